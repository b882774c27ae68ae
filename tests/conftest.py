"""Fixtures for the integration suite: the real otter-service binary, started
on a free port with the example course in a real git repository, on the
embedded store or the Firestore emulator, grading with the Docker runner where
an engine with the grading image is reachable (CI requires one) and with the
local runner (real otter-grader) otherwise."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

# The `hub` fixture: a real JupyterHub in front of the service.
pytest_plugins = ["hub_fixtures"]

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
        resp = requests.request(method, self.base + path, data=body, headers=headers or {}, timeout=60)
        return resp.status_code, resp.json()

    def wait_done(self, status_url, timeout=300):
        deadline = time.time() + timeout
        while True:
            code, body = self.request("GET", status_url)
            assert code == 200, body
            if body["status"] in ("graded", "failed", "needs_review"):
                return body
            assert time.time() < deadline, f"{status_url} still {body['status']}"
            time.sleep(0.25)


@pytest.fixture(scope="session")
def binary(tmp_path_factory):
    if not shutil.which("go") or not shutil.which("git"):
        missing("go and git are needed to build and run the service")
    path = tmp_path_factory.mktemp("bin") / "otter-service"
    subprocess.run(["go", "build", "-o", str(path), "./cmd/otter-service"], cwd=ROOT, check=True)
    return path


@pytest.fixture(scope="session")
def emulator():
    """The address of a Firestore emulator: FIRESTORE_EMULATOR_HOST, or one
    started from tests/emulator on a free loopback port."""
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if host:
        yield host
        return
    if not shutil.which("node") or not (ROOT / "tests" / "emulator" / "node_modules").exists():
        missing("the Firestore emulator is not installed (make test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["node", "serve.js", str(port)], cwd=ROOT / "tests" / "emulator", stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        pytest.fail("the Firestore emulator did not start")
    yield f"127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def docker_runner_env():
    """The Docker runner's settings where an engine with the grading image is
    reachable; otherwise {} (the local runner)."""
    image = os.environ.get("OTTER_GRADING_IMAGE", "otter-service-grader:local")
    if not shutil.which("docker"):
        return {}
    ok = subprocess.run(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not ok:
        if required():
            pytest.fail(f"required component missing: a Docker engine with {image}")
        return {}
    return {"OTTER_RUNNER": "docker", "OTTER_GRADING_IMAGE": image, "OTTER_INSTANCE": "pytest-" + uuid.uuid4().hex[:12]}


def service_env(tmp, extra_env, test_user="student"):
    """The service's environment, with the example course in a git repository
    under tmp; every request is the development user test_user unless
    test_user is None (then the service must authenticate requests itself,
    through JupyterHub when extra_env names one)."""
    otter = os.environ.get("OTTER_COMMAND") or str(ROOT / ".venv" / "bin" / "otter")
    if not os.path.exists(otter):
        missing("otter-grader is not installed in .venv (run make test)")
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
        "OTTER_DRAIN_DELAY": "0s",
        **({"TEST_USER": test_user} if test_user else {}),
        **extra_env,
    }
    if env.get("OTTER_RUNNER") == "docker" and "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env


def start_service(binary, tmp, extra_env, test_user="student"):
    """Starts the service (see service_env) and waits until it listens."""
    env = service_env(tmp, extra_env, test_user)
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
    return Service(proc, addr["addr"], log)


@pytest.fixture(scope="session")
def service(binary, tmp_path_factory):
    """The service on the embedded store."""
    svc = start_service(binary, tmp_path_factory.mktemp("otter"), docker_runner_env())
    yield svc
    svc.proc.terminate()
    svc.proc.wait(120)


def firestore_env(emulator, environment):
    return {
        **docker_runner_env(),
        "GCP_PROJECT_ID": "otter-service-test",
        "FIRESTORE_EMULATOR_HOST": emulator,
        "ENVIRONMENT": environment,
    }


def firestore_client(emulator):
    from google.cloud import firestore

    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator
    return firestore.Client(project="otter-service-test")


@pytest.fixture(scope="session")
def firestore_service(binary, emulator, tmp_path_factory):
    """The service on Firestore (the emulator), with collections of its own;
    yields (service, Firestore client, ENVIRONMENT)."""
    environment = "pytest" + uuid.uuid4().hex[:12]
    svc = start_service(binary, tmp_path_factory.mktemp("otter"), firestore_env(emulator, environment))
    yield svc, firestore_client(emulator), environment
    svc.proc.terminate()
    svc.proc.wait(120)


@pytest.fixture
def firestore_replicas(binary, emulator, tmp_path):
    """Starts instances of the service on one Firestore database with
    collections of their own: start(**env) returns a Service; .client and
    .environment are the database's. Every instance is stopped afterwards."""
    environment = "pytest" + uuid.uuid4().hex[:12]
    procs = []

    class Replicas:
        client = firestore_client(emulator)

        def __init__(self):
            self.environment = environment
            # One development user stands for a whole class here: lift the
            # per-student bound on submissions in flight.
            self.env = {**firestore_env(emulator, environment), "OTTER_MAX_IN_FLIGHT_PER_USER": "1000"}

        def start(self, name, **extra):
            """Starts the instance called name; starting a name again is a
            restart of that instance (same data directory, same Docker
            label, so it clears what its killed predecessor left)."""
            home = tmp_path / name
            home.mkdir(exist_ok=True)
            env = {**self.env, **extra}
            if "OTTER_INSTANCE" in env:
                env["OTTER_INSTANCE"] += "-" + name
            svc = start_service(binary, home, env)
            procs.append(svc.proc)
            return svc

    yield Replicas()
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(120)
