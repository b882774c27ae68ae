"""Grades reach edX: the service, with POST_GRADE=true, posts each graded
submission's grade to a local LTI consumer that checks every request's OAuth
1.0a signature and body hash with oauthlib and answers like edX. Retries ride
out the consumer's 5xx answers, a refusal is reported and not retried, and
posts still pending when the service is killed are made after its restart."""

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
