"""Grades reach edX: the service, with POST_GRADE=true, posts each graded
submission's grade to a local LTI consumer that checks every request's OAuth
1.0a signature and body hash with oauthlib and answers like edX. Retries ride
out the consumer's 5xx answers, a refusal is reported and not retried, and
posts still pending when the service is killed are made after its restart.
A slow edX, which applies a grade after the service stopped waiting for its
answer, does not leave an older grade in edX, whatever the interleaving, nor
in the one a post made too early loses (a newer grade selected while the
unanswered post may still be applied); a post in flight when the service is
killed is made again, of the same grade, once; and replicas on one database
never have two posts of one student's grade in flight at once."""

import json
import time

import pytest

from conftest import PREFIX, SUBMISSIONS, docker_runner_env, start_service
from lti_consumer import LTIConsumer

COURSE_ID = "BerkeleyX+Data8.1x+3T2022"
BLOCKS = {"lab01": "6333e19d6b4d46f88df671ba50f616d8", "lab02": "7393ab3b1bebe7c87c678281328bc2fa"}
KEY, SECRET = "otter key", "s3cr&t=/+%"


@pytest.fixture
def edx():
    with LTIConsumer(key=KEY, secret=SECRET, users={"student"}) as consumer:
        yield consumer


def posting_env(edx):
    return {**docker_runner_env(), "POST_GRADE": "true", "EDX_URL": edx.url,
            "LTI_CONSUMER_KEY": KEY, "LTI_CONSUMER_SECRET": SECRET, "OTTER_POST_BACKOFF": "1s"}


def submit(service, name):
    nb = json.loads((SUBMISSIONS / name).read_text())
    code, body = service.request("POST", PREFIX, json.dumps({"nb": nb}).encode(), {"Content-Type": "application/json"})
    assert code == 202, body
    return body


def wait_post(service, status_url, want, timeout=120):
    deadline = time.time() + timeout
    while True:
        code, body = service.request("GET", status_url)
        assert code == 200, body
        post = body.get("post") or {}
        if post.get("status") == want:
            return body
        assert time.time() < deadline, f"post of {status_url} is {post}, want {want}"
        time.sleep(0.25)


def stop(service):
    service.proc.terminate()
    service.proc.wait(120)


def test_grades_reach_edx_through_outages(binary, edx, tmp_path):
    service = start_service(binary, tmp_path, posting_env(edx))
    try:
        edx.fail_next(3, 503)  # edX down for the first attempts
        sent = {name: submit(service, name) for name in ("lab01-partial.ipynb", "lab02-perfect.ipynb")}
        want = {"lab01-partial.ipynb": ("lab01", 2 / 3), "lab02-perfect.ipynb": ("lab02", 1.0)}
        attempts = 0
        for name, body in sent.items():
            done = service.wait_done(body["status_url"])
            assert done["status"] == "graded", done
            done = wait_post(service, body["status_url"], "posted")
            attempts += done["post"]["attempts"]
            assert done["post"]["posted_at"]
        assert attempts >= 2 + 3, "the 503 answers were not retried"
        scores = edx.scores()
        for name, (assignment, grade) in want.items():
            sid = edx.sourced_id(COURSE_ID, BLOCKS[assignment], "student")
            assert sid in scores, (sid, scores)
            assert abs(scores[sid] - grade) < 1e-3, (name, scores[sid], grade)
        assert len(edx.received) == 2, "a grade was posted twice"
        assert edx.count("rejected") == 0, edx.events
    finally:
        stop(service)


def test_refused_grade_is_reported_not_retried(binary, edx, tmp_path):
    sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
    edx.fail_sourced_id(sid, "The grade could not be saved for this learner.")
    service = start_service(binary, tmp_path, posting_env(edx))
    try:
        body = submit(service, "lab01-perfect.ipynb")
        done = wait_post(service, body["status_url"], "failed", timeout=300)
        assert "could not be saved for this learner" in done["post"]["last_error"], done
        assert done["post"]["attempts"] == 1
        assert "could not be posted to edX" in done["message"]
        time.sleep(3)  # longer than the backoff: no retry comes
        assert [e.sourced_id for e in edx.events] == [sid], edx.events
        assert edx.received == []
    finally:
        stop(service)


def test_pending_posts_survive_a_restart(binary, edx, tmp_path):
    env = posting_env(edx)
    service = start_service(binary, tmp_path, env)
    edx.fail_next(10_000, 503)  # edX is down
    body = submit(service, "lab02-perfect.ipynb")
    done = service.wait_done(body["status_url"], 300)
    assert done["status"] == "graded"
    deadline = time.time() + 60
    while (done.get("post") or {}).get("attempts", 0) < 1:
        assert time.time() < deadline, done
        time.sleep(0.25)
        done = service.request("GET", body["status_url"])[1]
    assert done["post"]["status"] == "pending", done
    assert done["post"]["last_error"]
    service.proc.kill()
    service.proc.wait()

    edx.clear_faults()  # edX is back
    service = start_service(binary, tmp_path, env)
    try:
        wait_post(service, body["status_url"], "posted")
        assert edx.scores() == {edx.sourced_id(COURSE_ID, BLOCKS["lab02"], "student"): 1.0}
    finally:
        stop(service)


def test_disabled_posting_records_the_grade_only(binary, edx, tmp_path):
    service = start_service(binary, tmp_path, {**docker_runner_env(), "POST_GRADE": "false", "EDX_URL": edx.url})
    try:
        body = submit(service, "lab01-zero.ipynb")
        done = service.wait_done(body["status_url"], 300)
        assert done["post"]["status"] == "disabled", done
        assert "not posted to edX (posting is disabled)" in done["message"]
        time.sleep(2)
        assert edx.events == []
    finally:
        stop(service)


def test_tampering_is_held_not_posted(binary, edx, tmp_path):
    """A notebook whose answers equal anything (the grader's decoys give it
    away) is held for review: the student is told so, and its grade never
    reaches edX, while honest submissions before and after it are posted."""
    nb = (SUBMISSIONS / "lab01-zero.ipynb").read_text()
    liar = nb.replace("square_of_seven = 7 * 2",
                      "class Any:\\n    def __eq__(self, other):\\n        return True\\n    __hash__ = object.__hash__\\n"
                      "square_of_seven = Any()", 1).replace("return x + 2", "return Any()", 1)
    assert liar != nb
    service = start_service(binary, tmp_path, posting_env(edx))
    try:
        first = submit(service, "lab01-perfect.ipynb")
        wait_post(service, first["status_url"], "posted")
        code, held = service.request("POST", PREFIX, json.dumps({"nb": json.loads(liar)}).encode(),
                                     {"Content-Type": "application/json"})
        assert code == 202, held
        done = service.wait_done(held["status_url"])
        assert done["status"] == "needs_review", done
        assert "needs review by course staff" in done["message"], done
        assert done.get("grade") is None and not done.get("post") and not done.get("error"), done
        # Posts are made earliest first: once a later submission's grade is
        # posted, a post of the held one would have been made before it.
        last = submit(service, "lab01-partial.ipynb")
        wait_post(service, last["status_url"], "posted")
        sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
        assert len(edx.received) == 2, edx.events
        assert abs(edx.scores()[sid] - 2 / 3) < 1e-3, edx.scores()
    finally:
        stop(service)


@pytest.fixture(params=["sqlite", "firestore"])
def store(request, binary, tmp_path):
    """start(env, name="a") starts the service on the embedded store (in
    tmp_path) or on Firestore (the emulator, collections of the test's own);
    starting again with the same name is a restart on the same data."""
    if request.param == "sqlite":
        def start(env, name="a"):
            (tmp_path / name).mkdir(exist_ok=True)
            return start_service(binary, tmp_path / name, env)
        return start
    replicas = request.getfixturevalue("firestore_replicas")
    return lambda env, name="a": replicas.start(name, **env)


def wait_until(what, check, timeout):
    """Calls check() until it returns something true, which it returns."""
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.time() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.25)


def status(service, body):
    code, got = service.request("GET", body["status_url"])
    assert code == 200, got
    return got


def test_slow_edx_leaves_the_newest_grade(store, edx):
    """edX applies the first post 3 s after it came, when the service, which
    waits 2 s for an answer, has given up on it; meanwhile the student's
    newer, perfect submission is graded. Whatever the interleaving, edX ends
    with the perfect grade, applied after the stale one."""
    env = {**posting_env(edx), "OTTER_POST_TIMEOUT": "2s", "OTTER_POST_BACKOFF": "2s"}
    edx.delay_next(1, seconds=3)
    service = store(env)
    sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
    try:
        zero = submit(service, "lab01-zero.ipynb")
        perfect = submit(service, "lab01-perfect.ipynb")  # right away: graded alongside, received later
        seen = set()  # every post status the zero submission showed

        def posted():
            z, p = status(service, zero), status(service, perfect)
            seen.add((z.get("post") or {}).get("status"))
            return p if (p.get("post") or {}).get("status") == "posted" and edx.settled() else None

        done = wait_until("the perfect grade posted and edX's held request applied", posted, 300)
        assert done["grade"] == 1.0 and done["post"]["confirmed"] is True, done
        z = status(service, zero)
        assert z["status"] == "graded" and z["grade"] == 0.0, z
        mine = [o for o in edx.received if o.sourced_id == sid]
        assert mine and mine[-1].score == 1.0, f"edX holds {mine[-1].score if mine else None}: {edx.events}"
        assert edx.scores()[sid] == 1.0
        sent_zero = [e for e in edx.valid(sid) if e.score == 0.0]
        want = "replaced" if sent_zero else "superseded"  # replaced: its grade was sent; superseded: never
        assert z["post"]["status"] == want and z["post"]["replaced_by"] == perfect["id"], (z["post"], edx.events)
        assert bool(z["post"].get("posted_at")) == bool(sent_zero), z["post"]
        assert "posted" not in seen, seen
        assert edx.count("rejected") == 0, edx.events
    finally:
        stop(service)


def test_post_in_flight_when_killed_is_made_again_once(binary, edx, tmp_path):
    """The service is killed (SIGKILL) while edX holds its post unanswered;
    edX applies it later. The restarted service claims the post again once
    its lease (1 min with a 2 s post timeout) lapses and posts the same grade:
    at most two requests reach edX, both of that grade."""
    env = {**posting_env(edx), "OTTER_POST_TIMEOUT": "2s"}
    edx.delay_next(1, seconds=20)
    sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
    service = start_service(binary, tmp_path, env)
    try:
        body = submit(service, "lab01-partial.ipynb")
        edx.wait_for(lambda c: c.valid(sid), timeout=300)  # the post reached edX, which holds it
        assert [e.kind for e in edx.valid(sid)] == ["delayed"], edx.events
    finally:
        service.proc.kill()
        service.proc.wait()
    killed = time.time()

    service = start_service(binary, tmp_path, env)
    try:
        done = wait_post(service, body["status_url"], "posted", timeout=150)
        assert abs(done["grade"] - 2 / 3) < 1e-3 and done["post"]["confirmed"] is True, done
        edx.wait_for(lambda c: c.settled(), timeout=30)
        sent = edx.valid(sid)
        assert 1 <= len(sent) <= 2, edx.events
        assert {round(e.score, 4) for e in sent} == {round(2 / 3, 4)}, edx.events
        assert [e.kind for e in sent] == ["accepted"] * len(sent), edx.events
        assert abs(edx.scores()[sid] - 2 / 3) < 1e-3
        assert len(edx.events) == len(sent), edx.events  # nothing else came: no other attempt, none refused
        assert time.time() - killed < 90
    finally:
        stop(service)


def test_replicas_post_one_at_a_time(firestore_replicas, edx):
    """Two replicas on one Firestore database, an edX that takes 3 s over
    every request, and one student's three quick submissions, the last two
    made while edX holds the first post: edX never has two requests for that
    student's grade in flight at once, and ends with the newest submission's
    grade."""
    env = posting_env(edx)
    edx.delay_next(10_000, seconds=3)
    a, b = firestore_replicas.start("a", **env), firestore_replicas.start("b", **env)
    sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
    sent = [submit(a, "lab01-perfect.ipynb")]
    edx.wait_for(lambda c: c.valid(sid), timeout=300)  # the first post is in flight
    sent += [submit(b, "lab01-zero.ipynb"), submit(a, "lab01-partial.ipynb")]
    for body in sent:
        assert b.wait_done(body["status_url"])["status"] == "graded"
    wait_post(b, sent[-1]["status_url"], "posted", timeout=300)
    edx.wait_for(lambda c: c.settled(), timeout=30)
    requests_ = sorted(edx.valid(sid), key=lambda e: e.started)
    assert len(requests_) >= 2 and all(e.kind == "accepted" for e in requests_), edx.events
    for before, after in zip(requests_, requests_[1:]):
        assert after.started >= before.ended, f"two posts in flight at once: {before} and {after}"
    assert abs(edx.scores()[sid] - 2 / 3) < 1e-3, edx.events
    for body in sent[:-1]:
        post = status(a, body)["post"]
        assert post["status"] in ("replaced", "superseded") and post["replaced_by"] == sent[-1]["id"], post


def test_grade_selected_while_a_post_may_still_be_applied_waits(binary, edx, tmp_path):
    """The deterministic form of the slow-edX race: the first post (grade 0)
    goes unanswered for the service's 15 s; edX applies it at 28 s. The
    perfect submission is graded in between. Posting it before the
    unanswered post's wait-out (15 s + backoff after giving up) lets edX
    apply the stale 0 after it; the service must wait, and edX end with 1."""
    env = {**posting_env(edx), "OTTER_POST_TIMEOUT": "15s", "OTTER_POST_BACKOFF": "2s"}
    edx.delay_next(1, seconds=28)
    sid = edx.sourced_id(COURSE_ID, BLOCKS["lab01"], "student")
    service = start_service(binary, tmp_path, env)
    try:
        zero = submit(service, "lab01-zero.ipynb")
        edx.wait_for(lambda c: c.valid(sid), timeout=300)  # edX holds the post of 0
        wait_until("the service gave up waiting for edX's answer",
                   lambda: (status(service, zero).get("post") or {}).get("last_error"), 60)
        perfect = submit(service, "lab01-perfect.ipynb")
        assert service.wait_done(perfect["status_url"])["status"] == "graded"
        assert not edx.settled(), "the perfect grade came after edX applied the held post: the test shows nothing"
        done = wait_post(service, perfect["status_url"], "posted", timeout=120)
        edx.wait_for(lambda c: c.settled(), timeout=60)
        order = [(e.score, e.kind) for e in sorted(edx.valid(sid), key=lambda e: e.ended)]
        assert edx.scores()[sid] == 1.0, (f"edX holds {edx.scores()[sid]} while the service says {done['post']}; "
                                          f"requests in order applied: {order}")
    finally:
        stop(service)
