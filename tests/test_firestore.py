"""The service on Firestore, checked from Python the way course dashboards
read it: the old service's collections and fields. It grades with the Docker
runner where an engine with the grading image is reachable (and CI requires
one), with the local runner otherwise."""

import json

from google.cloud.firestore_v1.base_query import FieldFilter

from conftest import PREFIX, SUBMISSIONS


def submit_button(service, name, replace=None):
    nb = (SUBMISSIONS / name).read_text()
    if replace:
        nb = nb.replace(*replace)
    body = json.dumps({"nb": json.loads(nb)}).encode()
    return service.request("POST", PREFIX, body, {"Content-Type": "application/json"})


def test_grade_documents(firestore_service):
    service, db, env = firestore_service
    expected = json.loads((SUBMISSIONS / "expected.json").read_text())
    sent = {}
    for name in ("lab01-partial.ipynb", "lab01-perfect.ipynb", "lab01-error.ipynb"):
        code, body = submit_button(service, name)
        assert code == 202, body
        sent[name] = body
    for name, body in sent.items():
        done = service.wait_done(body["status_url"])
        assert done["status"] == expected[name]["status"]

        sub = db.collection(f"{env}-submissions").document(body["id"]).get().to_dict()
        assert sub["user"] == "student"
        assert (sub["course"], sub["section"], sub["assignment"]) == ("8x", "1", "lab01")
        assert json.loads(sub["notebook"])["metadata"]["otter_service"]["assignment"] == "lab01"
        assert sub["timestamp"] is not None

        grade = db.collection(f"{env}-grades").document(body["id"]).get()
        if expected[name]["status"] == "graded":
            g = grade.to_dict()
            assert g["user"] == "student"
            assert abs(g["grade"] - expected[name]["grade"]) < 1e-9
            assert (g["course"], g["section"], g["assignment"]) == ("8x", "1", "lab01")
            assert g["timestamp"] is not None
        else:
            assert not grade.exists
            errors = [d.to_dict() for d in db.collection(f"{env}-logs").where(filter=FieldFilter("submission_id", "==", body["id"])).stream()]
            assert any(e["type"] == "error" for e in errors), errors
    # One grade document per graded submission, no more.
    assert len(list(db.collection(f"{env}-grades").stream())) == 2


def test_refused_submission_is_logged(firestore_service):
    service, db, env = firestore_service
    code, body = submit_button(service, "lab01-perfect.ipynb", ('"assignment": "lab01"', '"assignment": "lab77"'))
    assert code == 422
    assert body["error"]["code"] == "unprocessable" and '"lab77"' in body["error"]["message"]
    logs = [d.to_dict() for d in db.collection(f"{env}-logs").where(filter=FieldFilter("assignment", "==", "lab77")).stream()]
    assert len(logs) == 1, logs
    entry = logs[0]
    assert entry["type"] == "error" and entry["user"] == "student"
    assert (entry["course"], entry["section"]) == ("8x", "1")
    assert "lab77" in entry["message"] and entry["timestamp"] is not None
