"""Fixtures for the integration suite: the real otter-service binary, started
on a free port with the example course in a real git repository, the embedded
store and the local runner (real otter-grader)."""

import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PREFIX = "/services/otter_grade/"
SUBMISSIONS = ROOT / "examples" / "submissions"


def required():
    return os.environ.get("CI") == "true" or os.environ.get("OTTER_TEST_REQUIRE") == "1"


def missing(reason):
    if required():
        pytest.fail("required component missing: " + reason)
    pytest.skip(reason)


class Service:
    def __init__(self, proc, addr, log):
        self.proc, self.addr, self.log = proc, addr, log
        self.base = f"http://{addr}"

    def request(self, method, path, body=None, headers=None):
        """Returns (status, parsed JSON body)."""
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_done(self, status_url, timeout=300):
        deadline = time.time() + timeout
        while True:
            code, body = self.request("GET", status_url)
            assert code == 200, body
            if body["status"] in ("graded", "failed"):
                return body
            assert time.time() < deadline, f"{status_url} still {body['status']}"
            time.sleep(0.25)


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    otter = os.environ.get("OTTER_COMMAND") or str(ROOT / ".venv" / "bin" / "otter")
    if not os.path.exists(otter):
        missing("otter-grader is not installed in .venv (run make test)")
    if not shutil.which("go") or not shutil.which("git"):
        missing("go and git are needed to build and run the service")
    tmp = tmp_path_factory.mktemp("otter")
    binary = tmp / "otter-service"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/otter-service"], cwd=ROOT, check=True)
    repo = tmp / "course-repo"
    subprocess.run(["bash", str(ROOT / "scripts" / "example-repo.sh"), str(repo)], check=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "OTTER_LISTEN": "127.0.0.1:0",
        "OTTER_DATA_DIR": str(tmp / "data"),
        "OTTER_COURSE_REPOS": f"8x={repo}",
        "OTTER_COMMAND": otter,
        "OTTER_WORKERS": "2",
        "TEST_USER": "student",
    }
    proc = subprocess.Popen([str(binary), "serve"], env=env, stderr=subprocess.PIPE, text=True)
    log, found = [], threading.Event()
    addr = {}

    def read():
        for line in proc.stderr:
            log.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "listening":
                addr["addr"] = entry["addr"]
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(30):
        proc.kill()
        pytest.fail("the service did not start:\n" + "".join(log))
    svc = Service(proc, addr["addr"], log)
    yield svc
    proc.terminate()
    proc.wait(120)
