"""What course staff do, through the real Hub in headless Chromium, with
grades posted to an LTI consumer that checks every signature: after a bad
autograder was deployed and graded everyone wrong, staff push the fix to
the course repository, regrade the assignment from its overview page,
watch the progress page fill in without reloading, and edX ends with the
grades otter gives under the fixed autograder. Staff also accept a
submission held for review and post a grade again; the CSV export matches
the store; every action is in the audit log with who did it. Students get
403 for every action; a form posted from another origin, or from a page of
the Hub's own origin without the session's token, changes nothing.
Screenshots go to var/screenshots/ (not committed)."""

import csv
import http.server
import io
import json
import subprocess
import threading
import uuid
import zipfile

import pytest

from conftest import PREFIX, ROOT, SUBMISSIONS, start_service
from hub_fixtures import run_hub
from lti_consumer import LTIConsumer
from test_pages import shot

COURSE_ID = "BerkeleyX+Data8.1x+3T2022"
LAB01 = "6333e19d6b4d46f88df671ba50f616d8"
KEY, SECRET = "staff key", "s3cr&t"
ZIP = ROOT / "examples" / "course" / "materials" / "x22" / "lab" / "1" / "lab01-autograder.zip"
EXPECTED = json.loads((SUBMISSIONS / "expected.json").read_text())


def rewrite_zip(data, name, change):
    """The zip data with member name's text changed by change."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == name:
                new = change(body.decode())
                assert new != body.decode()
                body = new.encode()
            dst.writestr(info, body)
    return out.getvalue()


def commit(repo, message):
    git = ["git", "-C", str(repo), "-c", "user.name=staff", "-c", "user.email=staff@localhost"]
    subprocess.run(git + ["commit", "-qam", message], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def edx():
    with LTIConsumer(key=KEY, secret=SECRET) as consumer:
        yield consumer


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The example course in a repository of its own, with a broken lab01
    autograder deployed: its q1 wants 7 squared to be 50."""
    repo = tmp_path_factory.mktemp("staff-course") / "repo"
    subprocess.run(["bash", str(ROOT / "scripts" / "example-repo.sh"), str(repo)], check=True)
    target = repo / ZIP.relative_to(ROOT / "examples" / "course")
    target.write_bytes(rewrite_zip(ZIP.read_bytes(), "tests/q1.py", lambda s: s.replace("square_of_seven == 49", "square_of_seven == 50")))
    commit(repo, "lab01: a wrong test")
    return repo


@pytest.fixture(scope="module")
def hub(binary, emulator, edx, course, tmp_path_factory):
    posting = {"OTTER_COURSE_REPOS": f"8x={course}", "POST_GRADE": "true", "EDX_URL": edx.url,
               "LTI_CONSUMER_KEY": KEY, "LTI_CONSUMER_SECRET": SECRET, "OTTER_POST_BACKOFF": "1s"}

    def start(tmp, env):
        return start_service(binary, tmp, {**env, **posting}, test_user=None)

    yield from run_hub(binary, emulator, tmp_path_factory.mktemp("staff-hub"), "external", start=start)


def notebook(name, change=None):
    nb = (SUBMISSIONS / name).read_text()
    if change:
        nb = change(nb)
    nb = json.loads(nb)
    nb["metadata"]["pytest_submission"] = uuid.uuid4().hex
    return nb


def liar(nb):
    """lab01-zero made to equal anything: the grader holds it for review."""
    return nb.replace("square_of_seven = 7 * 2",
                      "class Any:\\n    def __eq__(self, other):\\n        return True\\n    __hash__ = object.__hash__\\n"
                      "square_of_seven = Any()", 1).replace("return x + 2", "return Any()", 1)


def wait_status(hub, status_url, token, statuses, timeout=300):
    import time
    deadline = time.time() + timeout
    while True:
        body = hub.request("GET", status_url, token=token).json()
        if body["status"] in statuses:
            return body
        assert time.time() < deadline, f"{status_url} still {body['status']}"
        time.sleep(0.25)


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another origin: a page whose form posts to the service at once."""
    target = ""
    token = ""

    def do_GET(self):
        page = (f"<!doctype html><html><body><form id=f method=post action='{self.target}'>"
                f"<input name=course value=8x><input name=assignment value=lab01><input name=which value=latest>"
                f"<input name=token value='{self.token}'></form>"
                "<script>document.getElementById('f').submit()</script></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


def test_regrade_after_a_fix_reaches_edx(hub, edx, course, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    students = ["student1", "student2"]
    subs = {}
    for user in students:
        resp = hub.request("POST", PREFIX, token=hub.token(user), headers={"Content-Type": "application/json"},
                           data=json.dumps({"nb": notebook("lab01-perfect.ipynb")}))
        assert resp.status_code == 202, resp.text
        subs[user] = resp.json()
    held = hub.request("POST", PREFIX, token=hub.token("student3"), headers={"Content-Type": "application/json"},
                       data=json.dumps({"nb": notebook("lab01-zero.ipynb", liar)}))
    assert held.status_code == 202, held.text
    held = held.json()
    wrong = {}
    for user in students:
        done = hub.wait_done(subs[user]["status_url"], hub.token(user))
        assert done["status"] == "graded", done
        wrong[user] = done["grade"]
        assert wrong[user] < EXPECTED["lab01-perfect.ipynb"]["grade"], done  # the broken autograder's doing
    assert wait_status(hub, held["status_url"], hub.token("student3"), ("needs_review",))["status"] == "needs_review"
    sids = {u: edx.sourced_id(COURSE_ID, LAB01, u) for u in students + ["student3"]}
    edx.wait_for(lambda e: all(abs(e.scores().get(sids[u], -1) - wrong[u]) < 1e-6 for u in students))

    # Students may do none of it.
    student = hub.token("student1")
    sid1 = subs["student1"]["id"]
    for path, body in [(f"api/submissions/{sid1}/regrade", {}), (f"api/submissions/{sid1}/repost", {}),
                       (f"api/submissions/{held['id']}/review", {"decision": "accept"}),
                       ("api/regrades", {"course": "8x", "assignment": "lab01", "which": "latest"})]:
        resp = hub.request("POST", PREFIX + path, token=student, headers={"Content-Type": "application/json"}, data=json.dumps(body))
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", (path, resp.status_code, resp.text)
    for path in ["api/audit?course=8x", "audit?course=8x", "api/overview?course=8x"]:
        assert hub.request("GET", PREFIX + path, token=student).status_code == 403, path

    # Course staff fix the autograder and regrade the assignment from its overview.
    hub.browser_login(chromium, "teacher")
    chromium.get(hub.url + PREFIX + "staff?course=8x&section=1&assignment=lab01")
    WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.hist"))
    shot(chromium, "staff-overview-actions")

    # Forged forms first: from another origin (this host, another port:
    # the same site, so the browser sends the session cookie), and from a
    # page of the Hub's own origin that has no token. Nothing happens.
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    token = chromium.find_element(By.CSS_SELECTOR, "form[action$='regrades'] input[name=token]").get_attribute("value")
    assert len(token) == 32, token
    try:
        _Attacker.target, _Attacker.token = hub.url + PREFIX + "regrades", token
        chromium.get(f"http://127.0.0.1:{attacker.server_address[1]}/")
        WebDriverWait(chromium, 30).until(lambda d: PREFIX + "regrades" in d.current_url)
        assert "Forbidden" in chromium.find_element(By.TAG_NAME, "h1").text, chromium.page_source[:2000]
        assert "did not come from a page of the grading service" in chromium.page_source
    finally:
        attacker.shutdown()
    chromium.get(hub.url + "/services/page/")
    chromium.execute_script("""
        var f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
        [['course', '8x'], ['assignment', 'lab01'], ['which', 'latest'], ['token', 'not-the-token']].forEach(function (kv) {
            var i = document.createElement('input'); i.name = kv[0]; i.value = kv[1]; f.appendChild(i); });
        document.body.appendChild(f); f.submit();""", hub.url + PREFIX + "regrades")
    WebDriverWait(chromium, 30).until(lambda d: PREFIX + "regrades" in d.current_url)
    assert "Forbidden" in chromium.find_element(By.TAG_NAME, "h1").text, chromium.page_source[:2000]
    assert "not made for your current sign-in" in chromium.page_source
    teacher = hub.token("teacher")
    assert hub.request("GET", PREFIX + "api/audit?course=8x", token=teacher).json()["entries"] == []
    assert hub.request("GET", subs["student1"]["status_url"], token=teacher).json()["grade"] == wrong["student1"]

    ZIP_IN_REPO = course / ZIP.relative_to(ROOT / "examples" / "course")
    ZIP_IN_REPO.write_bytes(ZIP.read_bytes())
    fixed = commit(course, "lab01: fix q1's test")
    chromium.get(hub.url + PREFIX + "staff?course=8x&section=1&assignment=lab01")
    chromium.find_element(By.CSS_SELECTOR, "form[action$='regrades'] button[value=latest]").click()
    WebDriverWait(chromium, 30).until(lambda d: "/regrades/" in d.current_url and d.find_elements(By.TAG_NAME, "progress"))
    chromium.execute_script("window.sameDocument = 'yes'")
    shot(chromium, "regrade-progress")
    summary = lambda: chromium.execute_script("var e = document.querySelector('.summary'); return e ? e.innerText : ''")
    WebDriverWait(chromium, 300, poll_frequency=0.5).until(lambda d: summary().startswith("3 of 3 regraded"))
    assert chromium.execute_script("return window.sameDocument") == "yes", "the progress page was reloaded"
    shot(chromium, "regrade-done")
    for user in students:
        done = hub.request("GET", subs[user]["status_url"], token=teacher).json()
        assert done["status"] == "graded" and done["grade"] == EXPECTED["lab01-perfect.ipynb"]["grade"], done
    edx.wait_for(lambda e: all(e.scores().get(sids[u]) == EXPECTED["lab01-perfect.ipynb"]["grade"] for u in students))
    assert wait_status(hub, held["status_url"], teacher, ("needs_review",))["status"] == "needs_review"  # regraded: held again
    assert sids["student3"] not in edx.scores()

    # Accept the held one from its page: its grade is recorded and posted.
    chromium.get(hub.url + held["status_url"])
    WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[value=accept]"))
    shot(chromium, "submission-review")
    chromium.find_element(By.CSS_SELECTOR, "button[value=accept]").click()
    WebDriverWait(chromium, 30).until(lambda d: "Graded" in d.find_element(By.CSS_SELECTOR, ".summary").text)
    accepted = hub.request("GET", held["status_url"], token=teacher).json()
    edx.wait_for(lambda e: e.scores().get(sids["student3"]) == accepted["grade"])

    # Post one again, through the API.
    before = len(edx.valid(sids["student2"]))
    resp = hub.request("POST", PREFIX + f"api/submissions/{subs['student2']['id']}/repost", token=teacher)
    assert resp.status_code == 200, resp.text
    edx.wait_for(lambda e: len(e.valid(sids["student2"])) == before + 1)

    # The export is the store's.
    export = hub.request("GET", PREFIX + "api/export/submissions.csv?course=8x&assignment=lab01", token=teacher)
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 3, rows
    for r in rows:
        record = hub.record("grades", r["Submission"])
        assert record and r["Status"] == "graded" and abs(float(r["Grade"]) - record["grade"]) < 1e-9, (r, record)
        assert record["user"] == r["Student"], (r, record)

    # Every action, newest first, with who did it.
    audit = hub.request("GET", PREFIX + "api/audit?course=8x", token=teacher).json()["entries"]
    actions = [(e["by"], e["action"].split(" (")[0].split(":")[0]) for e in audit]
    assert actions == [
        ("teacher", "asked for the grade to be posted to edX again"),
        ("teacher", "accepted the grade held for review"),
        ("teacher", "asked for a regrade of the newest submission of each student of 8x/1/lab01 against commit " + fixed[:12]),
    ], audit
    chromium.get(hub.url + PREFIX + "audit?course=8x")
    WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.audit"))
    assert "teacher" in chromium.find_element(By.CSS_SELECTOR, "table.audit").text
    shot(chromium, "audit")
