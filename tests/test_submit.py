"""The Submit button's contract, exercised from outside the service."""

import json

import requests

from conftest import PREFIX, SUBMISSIONS


def submit_button_body(name):
    """Exactly what the JupyterLab Submit extension posts: {"nb": <notebook>}."""
    nb = json.loads((SUBMISSIONS / name).read_text())
    return json.dumps({"nb": nb}).encode()


def test_submit_button_request_is_graded(service):
    headers = {
        "Content-Type": "application/json",
        "Origin": service.base,
        "Referer": service.base + "/user/student/lab/tree/lab01.ipynb",
        "Sec-Fetch-Site": "same-origin",
    }
    code, body = service.request("POST", PREFIX, submit_button_body("lab01-partial.ipynb"), headers)
    assert code == 202, body
    assert body["status"] == "queued"
    # Older Submit buttons alert() the response text: it must say something a student understands.
    assert "received" in body["message"] and "lab01" in body["message"]
    done = service.wait_done(body["status_url"])
    expected = json.loads((SUBMISSIONS / "expected.json").read_text())["lab01-partial.ipynb"]
    assert done["status"] == "graded"
    assert abs(done["grade"] - expected["grade"]) < 1e-9
    assert all(q["max_score"] > 0 for q in done["questions"])


def test_failed_grading_says_why(service):
    code, body = service.request("POST", PREFIX, submit_button_body("lab01-error.ipynb"), {"Content-Type": "application/json"})
    assert code == 202, body
    done = service.wait_done(body["status_url"])
    assert done["status"] == "failed"
    assert done["grade"] is None
    assert done["error"]["code"] and len(done["error"]["message"]) > 20


def test_refusals_are_json_and_name_the_problem(service):
    nb = (SUBMISSIONS / "lab01-perfect.ipynb").read_text()
    cases = [
        ({"Content-Type": "application/json"}, b'{"nb": ', 400, "invalid"),
        ({"Content-Type": "text/plain"}, nb.encode(), 415, "unsupported"),
        ({"Content-Type": "application/json"}, nb.replace('"assignment": "lab01"', '"assignment": "lab42"').encode(), 422, "unprocessable"),
        ({"Content-Type": "application/json"}, b'{"nb": {"nbformat": 4, "cells": [], "metadata": {}}}', 422, "unprocessable"),
    ]
    for headers, body, status, code in cases:
        got, resp = service.request("POST", PREFIX, body, headers)
        assert got == status, resp
        assert resp["error"]["code"] == code
        assert resp["error"]["message"]
    _, resp = service.request("POST", PREFIX, nb.replace('"assignment": "lab01"', '"assignment": "lab42"').encode(), {"Content-Type": "application/json"})
    assert '"lab42"' in resp["error"]["message"]


def test_unknown_submission_is_404(service):
    code, body = service.request("GET", PREFIX + "submissions/0123456789abcdef")
    assert code == 404
    assert body["error"]["code"] == "not_found"


def test_notebook_is_graded_under_the_students_file_name(service):
    """The same notebook posted three ways is graded, and shown, under the
    name each request gives: the Submit button's X-Otter-Notebook-Path (its
    base name, URL-decoded), an upload's file name, and for a bare notebook
    the name its otter.Notebook(...) call opens."""
    name = "lab01-partial.ipynb"
    raw = (SUBMISSIONS / name).read_bytes()
    assert b'otter.Notebook(\\"lab01.ipynb\\")' in raw  # what the bare form falls back on
    expected = json.loads((SUBMISSIONS / "expected.json").read_text())[name]
    posts = [
        (
            "Submit button",
            dict(data=submit_button_body(name), headers={
                "Content-Type": "application/json",
                "X-Otter-Notebook-Path": "work/lab%2001/lab01%20(1).ipynb",
            }),
            "lab01 (1).ipynb",
        ),
        ("upload", dict(files={"file": ("Lab01-Copy1.ipynb", raw, "application/x-ipynb+json")}), "Lab01-Copy1.ipynb"),
        ("bare notebook", dict(data=raw, headers={"Content-Type": "application/json"}), "lab01.ipynb"),
    ]
    accepted = []
    for how, kwargs, want in posts:
        resp = requests.post(service.base + PREFIX, timeout=60, **kwargs)
        assert resp.status_code == 202, (how, resp.text)
        status_url = resp.json()["status_url"]
        code, body = service.request("GET", status_url)
        assert code == 200, body
        assert body["notebook"] == want, (how, body)
        accepted.append((how, status_url, want))
    for how, status_url, want in accepted:
        done = service.wait_done(status_url)
        assert done["notebook"] == want, (how, done)
        assert done["status"] == expected["status"], (how, done)
        assert abs(done["grade"] - expected["grade"]) < 1e-9, (how, done)
