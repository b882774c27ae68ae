"""Authentication through a real JupyterHub: every request goes through the
Hub's proxy to the service registered as the external service otter_grade
(see hub_fixtures.py and tests/hub/jupyterhub_config.py).

Users: student1, student2 and student3 (group "students", which may use the
service), ta (group "staff", the service's OTTER_STAFF_GROUP), teacher (Hub
admin) and outsider (a Hub user without access to the service)."""

import json
import urllib.parse
import uuid

import pytest
import requests

from conftest import PREFIX, SUBMISSIONS
from hub_fixtures import _stop

JSON = {"Content-Type": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def notebook():
    """lab01-perfect.ipynb, made unique so that no two submissions are the same bytes."""
    nb = json.loads((SUBMISSIONS / "lab01-perfect.ipynb").read_text())
    nb["metadata"]["pytest_submission"] = uuid.uuid4().hex
    return nb


def body():
    """What the Submit button posts: {"nb": <notebook>}."""
    return json.dumps({"nb": notebook()}).encode()


def error_code(resp):
    assert resp.headers.get("Content-Type", "").startswith("application/json"), (resp.status_code, resp.headers, resp.text[:300])
    return resp.json()["error"]["code"]


def submit_with_token(hub, user, headers=None):
    resp = hub.request("POST", PREFIX, token=hub.token(user), headers={**JSON, **(headers or {})}, data=body())
    assert resp.status_code == 202, (resp.status_code, resp.text)
    return resp.json()


def check_attributed(hub, sub, user):
    """The submission is user's: its status (seen with user's token) says so,
    it is graded, and the service's submission and grade records name user."""
    done = hub.wait_done(sub["status_url"], hub.token(user))
    assert done["user"] == user, done
    assert done["status"] == "graded", done
    assert abs(done["grade"] - 1.0) < 1e-9, done
    assert hub.record("submissions", sub["id"])["user"] == user
    grade = hub.record("grades", sub["id"])
    assert grade is not None and grade["user"] == user, grade
    assert abs(grade["grade"] - 1.0) < 1e-9


def oauth_session(hub, user):
    """A cookie-keeping client that logged in to the Hub as user and then
    opened the service in the way a browser does; returns (session, the
    responses of the round trip)."""
    s = hub.login(user)
    resp = s.get(hub.url + PREFIX, headers=HTML, timeout=60)
    return s, resp


# Tokens


def test_student_token_is_accepted_and_attributed(hub):
    sub = submit_with_token(hub, "student1")
    assert sub["status"] == "queued"
    assert sub["status_url"].startswith(PREFIX + "submissions/")
    check_attributed(hub, sub, "student1")


def test_bearer_token_is_accepted(hub):
    resp = hub.request("POST", PREFIX, headers={**JSON, "Authorization": "Bearer " + hub.token("student2")}, data=body())
    assert resp.status_code == 202, resp.text
    who = hub.request("GET", PREFIX, headers={"Authorization": "Bearer " + hub.token("student2")})
    assert who.status_code == 200, who.text
    assert who.json() == {"user": "student2", "admin": False}


def test_whoami(hub):
    # "admin": sees every submission (Hub admins and the staff group).
    for user, admin in (("student1", False), ("ta", True), ("teacher", True)):
        resp = hub.request("GET", PREFIX, token=hub.token(user))
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"user": user, "admin": admin}


def test_user_without_access_is_forbidden(hub):
    token = hub.token("outsider")
    resp = hub.request("POST", PREFIX, token=token, headers=JSON, data=body())
    assert resp.status_code == 403, resp.text
    assert error_code(resp) == "forbidden"
    resp = hub.request("GET", PREFIX, token=token)
    assert resp.status_code == 403, resp.text
    assert error_code(resp) == "forbidden"


def test_unknown_token_is_refused(hub):
    for auth in ("token " + "0" * 32, "Bearer not-a-token"):
        resp = hub.request("POST", PREFIX, headers={**JSON, "Authorization": auth}, data=body())
        assert resp.status_code in (401, 403), resp.text
        assert error_code(resp) in ("unauthenticated", "forbidden")


def test_token_of_another_service_is_refused(hub):
    resp = hub.request("POST", PREFIX, token=hub.page_token, headers=JSON, data=body())
    assert resp.status_code in (401, 403), resp.text
    assert error_code(resp) in ("unauthenticated", "forbidden")


def test_no_credentials_is_401_json(hub):
    for method, path, headers, data in (
        ("POST", PREFIX, JSON, body()),
        ("GET", PREFIX, {"Accept": "application/json"}, None),
        ("GET", PREFIX + "submissions/0123456789abcdef", {}, None),
    ):
        resp = hub.request(method, path, headers=headers, data=data, allow_redirects=False)
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
        assert error_code(resp) == "unauthenticated"


def test_forged_headers_give_nothing(hub):
    forged = {
        "Referer": hub.url + "/user/student2/lab/tree/lab01.ipynb",
        "X-Forwarded-User": "student2",
        "X-Remote-User": "student2",
        "Remote-User": "student2",
        "X-Jupyterhub-User": "student2",
    }
    # Without credentials they are not credentials.
    resp = hub.request("POST", PREFIX, headers={**JSON, **forged}, data=body(), allow_redirects=False)
    assert resp.status_code == 401, resp.text
    assert error_code(resp) == "unauthenticated"
    # With student1's token they do not change who submits.
    sub = submit_with_token(hub, "student1", forged)
    status = hub.request("GET", sub["status_url"], token=hub.token("student1"), headers=forged)
    assert status.status_code == 200, status.text
    assert status.json()["user"] == "student1"
    assert hub.request("GET", sub["status_url"], token=hub.token("student2")).status_code == 404
    assert hub.record("submissions", sub["id"])["user"] == "student1"


# Ownership


def test_students_see_only_their_own_submissions(hub):
    sub = submit_with_token(hub, "student1")
    mine = hub.request("GET", sub["status_url"], token=hub.token("student1"))
    assert mine.status_code == 200, mine.text
    other = hub.request("GET", sub["status_url"], token=hub.token("student2"))
    assert other.status_code == 404, other.text
    assert error_code(other) == "not_found"
    # Hub admins and the staff group see every submission.
    for user in ("teacher", "ta"):
        resp = hub.request("GET", sub["status_url"], token=hub.token(user))
        assert resp.status_code == 200, (user, resp.text)
        assert resp.json()["user"] == "student1"
    outsider = hub.request("GET", sub["status_url"], token=hub.token("outsider"))
    assert outsider.status_code == 403, outsider.text


# Browsers: the OAuth round trip and the Submit button's cookie-only POST


@pytest.fixture(scope="module")
def student1_browser(hub):
    """student1's cookie-keeping client after the OAuth round trip."""
    return oauth_session(hub, "student1")


def test_oauth_round_trip(hub, student1_browser):
    s, resp = student1_browser
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    # A browser lands on the page of its submissions.
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers
    assert "Signed in as <strong>student1</strong>" in resp.text, resp.text[:1000]
    steps = [(r.status_code, r.headers.get("Location", "")) for r in resp.history]
    # service → Hub's authorize → (no confirmation page) → service's callback → the page first asked for
    assert len(steps) == 3, steps
    code, location = steps[0]
    assert code == 302, steps
    authorize = urllib.parse.urlsplit(urllib.parse.urljoin(hub.url + PREFIX, location))
    assert (authorize.scheme, authorize.netloc) == ("http", urllib.parse.urlsplit(hub.url).netloc), location
    assert authorize.path == "/hub/api/oauth2/authorize", location
    query = urllib.parse.parse_qs(authorize.query)
    assert query["client_id"] == ["service-otter_grade"]
    assert query["response_type"] == ["code"]
    assert urllib.parse.urlsplit(query["redirect_uri"][0]).path == PREFIX + "oauth_callback"
    assert query["state"][0]
    assert urllib.parse.urlsplit(urllib.parse.urljoin(hub.url, steps[1][1])).path == PREFIX + "oauth_callback"
    assert steps[2][0] == 302 and urllib.parse.urlsplit(urllib.parse.urljoin(hub.url, steps[2][1])).path == PREFIX

    cookie = next(c for c in s.cookies if c.name == "otter-service-session")
    assert cookie.path == PREFIX
    assert any(k.lower() == "httponly" for k in cookie._rest), cookie._rest
    # The cookie alone authenticates reads.
    again = s.get(hub.url + PREFIX, headers={"Accept": "application/json"}, allow_redirects=False, timeout=60)
    assert again.status_code == 200, again.text
    assert again.json()["user"] == "student1"


def test_oauth_callback_refuses_a_forged_state(hub):
    s = hub.login("student2")
    resp = s.get(hub.url + PREFIX + "oauth_callback", params={"code": "forged", "state": "forged"}, headers=HTML, allow_redirects=False, timeout=60)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert "otter-service-session" not in {c.name for c in s.cookies}


def test_cookie_post_same_origin_is_accepted(hub, student1_browser):
    s, _ = student1_browser
    for headers in ({"Origin": hub.url}, {"Sec-Fetch-Site": "same-origin"}):
        resp = s.post(hub.url + PREFIX, headers={**JSON, **headers}, data=body(), allow_redirects=False, timeout=60)
        assert resp.status_code == 202, (headers, resp.status_code, resp.text)
        sub = resp.json()
        status = s.get(hub.url + sub["status_url"], allow_redirects=False, timeout=60)
        assert status.status_code == 200, status.text
        assert status.json()["user"] == "student1"
    check_attributed(hub, sub, "student1")


def test_cookie_post_from_a_foreign_origin_is_refused(hub, student1_browser):
    s, _ = student1_browser
    for headers in (
        {"Origin": "http://attacker.test"},
        {"Origin": "http://attacker.test", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
    ):
        resp = s.post(hub.url + PREFIX, headers={**JSON, **headers}, data=body(), allow_redirects=False, timeout=60)
        assert resp.status_code == 403, (headers, resp.status_code, resp.text)
        assert error_code(resp) == "forbidden"
    # A same-origin POST that is not JSON (what a plain HTML form can send) is not accepted either.
    resp = s.post(hub.url + PREFIX, headers={"Origin": hub.url, "Content-Type": "text/plain"}, data=body(), allow_redirects=False, timeout=60)
    assert resp.status_code != 202, resp.text


def test_first_submission_without_a_service_cookie(hub):
    """The Submit button's POST from a student who never opened the service:
    held, sent through the Hub's authorize step, accepted at the callback."""
    s = hub.login("student2")
    resp = s.post(hub.url + PREFIX, headers={**JSON, "Origin": hub.url}, data=body(), allow_redirects=False, timeout=60)
    assert resp.status_code == 303, (resp.status_code, resp.text)
    assert urllib.parse.urlsplit(urllib.parse.urljoin(hub.url, resp.headers["Location"])).path == "/hub/api/oauth2/authorize"
    # The pending submission is bound to this browser by a short-lived cookie.
    held = [c for c in s.cookies if c.name.startswith("otter-service-oauth")]
    assert held and all(c.path == PREFIX for c in held), held
    # Follow it as fetch does (303: GET, same origin, with the Hub's cookies).
    final = s.get(urllib.parse.urljoin(hub.url + PREFIX, resp.headers["Location"]), headers={"Accept": "*/*"}, timeout=60)
    assert final.status_code == 202, (final.status_code, final.text, [(r.status_code, r.headers.get("Location")) for r in final.history])
    sub = final.json()
    assert sub["status_url"].startswith(PREFIX + "submissions/")
    check_attributed(hub, sub, "student2")
    assert hub.request("GET", sub["status_url"], token=hub.token("student1")).status_code == 404


# The Submit button in a real browser

SUBMIT_BUTTON = """
const done = arguments[arguments.length - 1];
fetch("/services/otter_grade/", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({nb: arguments[0]})})
  .then(async (r) => done({status: r.status, text: await r.text(), url: r.url}))
  .catch((e) => done({error: String(e)}));
"""


def test_submit_button_in_chromium_for_a_student_who_never_opened_the_service(hub, chromium):
    from selenium.webdriver.common.by import By

    hub.browser_login(chromium, "student3")
    assert not [c for c in chromium.get_cookies() if c["name"].startswith("otter-service")]

    chromium.get(hub.url + "/services/page/")
    assert chromium.current_url == hub.url + "/services/page/"
    result = chromium.execute_async_script(SUBMIT_BUTTON, notebook())
    assert "error" not in result, result
    assert result["status"] == 202, result
    sub = json.loads(result["text"])
    assert sub["status"] == "queued" and "received" in sub["message"], sub
    check_attributed(hub, sub, "student3")
    # The browser came back with the service's session: opening the service needs no sign-in now.
    chromium.get(hub.url + PREFIX)
    assert urllib.parse.urlsplit(chromium.current_url).path == PREFIX
    assert "Signed in as student3" in chromium.find_element(By.CLASS_NAME, "who").text, chromium.page_source[:1000]


# deployment/jupyterhub/managed.py: the Hub starts the service itself


def test_managed_service(managed_hub):
    hub = managed_hub
    who = hub.request("GET", PREFIX, token=hub.token("student1"))
    assert who.status_code == 200, who.text
    assert who.json() == {"user": "student1", "admin": False}
    assert hub.request("GET", PREFIX, token=hub.token("outsider")).status_code == 403
    s, resp = oauth_session(hub, "student2")
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    assert "Signed in as <strong>student2</strong>" in resp.text, resp.text[:1000]
    resp = s.post(hub.url + PREFIX, headers={**JSON, "Origin": hub.url}, data=body(), allow_redirects=False, timeout=60)
    assert resp.status_code == 202, resp.text
    check_attributed(hub, resp.json(), "student2")


# Last, because it takes the Hub down: with the Hub unreachable, a token the
# service has not seen is neither accepted nor refused, but answered 503.


def test_hub_outage_gives_503_not_a_wrong_answer(hub):
    fresh = hub.admin("POST", "/users/student1/tokens", json={"note": "pytest outage", "expires_in": 3600})["token"]
    submissions = hub.db.collection(f"{hub.environment}-submissions")
    before = len(list(submissions.stream()))
    _stop(hub.proc)
    resp = requests.post(f"http://{hub.service.addr}{PREFIX}", headers={**JSON, "Authorization": "token " + fresh},
                         data=body(), timeout=60)
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "unavailable"
    assert "JupyterHub cannot be reached" in resp.json()["error"]["message"]
    assert resp.headers.get("Retry-After")
    assert len(list(submissions.stream())) == before, "a submission was accepted while nobody could say whose it was"
