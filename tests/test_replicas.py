"""The work queue on Firestore, from outside: a service killed hard with
submissions in flight grades every one of them exactly once after it comes
back, and two replicas sharing one database grade 40 submissions with each
graded exactly once. "Exactly once" is read from the database the way an
operator would: one grade document per submission, and one claim (lease
document) per submission unless the claim was cut short by the kill."""

import json
import time

from google.cloud.firestore_v1.base_query import FieldFilter

from conftest import PREFIX, SUBMISSIONS

NAMES = ["lab01-perfect.ipynb", "lab01-partial.ipynb", "lab01-zero.ipynb", "lab02-perfect.ipynb"]
GRADES = {"lab01-perfect.ipynb": 1.0, "lab01-partial.ipynb": 2 / 3, "lab01-zero.ipynb": 0.0, "lab02-perfect.ipynb": 1.0}


def submit(service, name, i):
    """Posts the Submit button's body; i makes each notebook's bytes unique."""
    nb = json.loads((SUBMISSIONS / name).read_text())
    nb["metadata"]["submission_number"] = i
    code, body = service.request("POST", PREFIX, json.dumps({"nb": nb}).encode(), {"Content-Type": "application/json"})
    assert code == 202, body
    return body


def grade_documents(db, env, sid):
    return [d.to_dict() for d in db.collection(f"{env}-grades").where(filter=FieldFilter("submission_id", "==", sid)).stream()]


def claims(db, env, sid):
    """The lease documents of a submission: one per claim, named {id}-{claim}."""
    return [d.id for d in db.collection(f"{env}-leases").stream() if d.id.rsplit("-", 1)[0] == sid]


def check_graded(service, db, env, sent, timeout=600):
    for name, body in sent:
        done = service.wait_done(body["status_url"], timeout)
        assert done["status"] == "graded", (name, done)
        assert abs(done["grade"] - GRADES[name]) < 1e-9, (name, done)
        grades = grade_documents(db, env, body["id"])
        assert len(grades) == 1, (body["id"], grades)
        assert abs(grades[0]["grade"] - GRADES[name]) < 1e-9
        assert grades[0]["user"] == "student"
    assert len(list(db.collection(f"{env}-grades").stream())) == len(sent)


def test_killed_service_grades_everything_once_after_restart(firestore_replicas):
    replicas = firestore_replicas
    db, env = replicas.client, replicas.environment
    settings = {"OTTER_WORKERS": "1", "OTTER_LEASE": "3s"}
    service = replicas.start("a", **settings)
    sent = [(name, submit(service, name, i)) for i, name in enumerate(NAMES * 2)]

    first = sent[0][1]["status_url"]
    deadline = time.time() + 120
    while service.request("GET", first)[1]["status"] != "grading":
        assert time.time() < deadline, "grading never started"
        time.sleep(0.05)
    time.sleep(1)  # inside the grading
    service.proc.kill()
    service.proc.wait()

    service = replicas.start("a", **settings)
    check_graded(service, db, env, sent)
    code, status = service.request("GET", first)
    assert status["attempts"] >= 2, status
    assert len(claims(db, env, sent[0][1]["id"])) == status["attempts"]
    # Those the killed service never touched were claimed once.
    assert len(claims(db, env, sent[-1][1]["id"])) == 1


def test_two_replicas_grade_each_submission_once(firestore_replicas):
    replicas = firestore_replicas
    db, env = replicas.client, replicas.environment
    a = replicas.start("a", OTTER_WORKERS="2", VERBOSE_LOGGING="false")
    b = replicas.start("b", OTTER_WORKERS="2", VERBOSE_LOGGING="false")
    sent = [(NAMES[i % len(NAMES)], submit(a if i % 2 == 0 else b, NAMES[i % len(NAMES)], i)) for i in range(40)]
    check_graded(a, db, env, sent, timeout=900)
    for name, body in sent:
        assert len(claims(db, env, body["id"])) == 1, (body["id"], claims(db, env, body["id"]))
        assert a.request("GET", body["status_url"])[1]["attempts"] == 1
    graded_by = ["".join(r.log).count('"msg":"graded"') for r in (a, b)]
    assert all(n > 0 for n in graded_by), f"one replica graded nothing ({graded_by}); the test shows less than it should"
