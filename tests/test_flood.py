"""A flood of uploads against the service as production runs it.

The service runs in a container with the production manifests' limits for
its container (deployment/kubernetes/base/deployment.yaml: 1 GiB of memory,
one CPU), behind a real JupyterHub, grading in real containers on the
Firestore emulator. 1,000 connections each upload a 10 MiB notebook at
once, half with students' API tokens and half as a browser not signed in
(held for sign-in). The service must stay up (no OOM kill), answer /healthz
throughout, answer every upload (accepted: 202 or 303 to sign-in; refused:
429 or 503, never a dropped connection), grade everything it accepted, and
give its memory back once the burst is over."""

import asyncio
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import PREFIX, ROOT, SUBMISSIONS, docker_runner_env, missing, service_env
from hub_fixtures import free_port, run_hub

CONNECTIONS = 1000
MEMORY = "1g"  # the service container's limit in the manifests
BODY = 10 << 20  # OTTER_MAX_BODY_BYTES' default: the largest notebook accepted


class _GitHandler(http.server.BaseHTTPRequestHandler):
    """Git's smart HTTP (git http-backend, as CGI) for the repositories
    under root: the service's image has no git for local paths."""

    root = None

    def do_GET(self):
        self._backend()

    def do_POST(self):
        self._backend()

    def log_message(self, *args):
        pass

    def _backend(self):
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""), "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Stopper:
    """The container's stand-in for a process, as run_hub stops it."""

    def __init__(self, name):
        self.name = name

    def terminate(self):
        subprocess.run(["docker", "stop", "-t", "60", self.name], capture_output=True)

    def wait(self, timeout=None):
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


class ContainerService:
    def __init__(self, name, addr):
        self.name, self.addr = name, addr
        self.base = f"http://{addr}"
        self.proc = _Stopper(name)

    def inspect(self):
        out = subprocess.run(["docker", "inspect", self.name], capture_output=True, text=True, check=True).stdout
        return json.loads(out)[0]

    def rss(self, field="VmRSS"):
        """The service process's resident memory in MiB (VmHWM: its peak)."""
        pid = self.inspect()["State"]["Pid"]
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
        raise AssertionError(f"no {field} for the service's process")

    def logs(self):
        return subprocess.run(["docker", "logs", self.name], capture_output=True, text=True).stderr[-8000:]


@pytest.fixture(scope="module")
def flood_hub(emulator, tmp_path_factory):
    if not shutil.which("docker"):
        missing("docker is not installed (scripts/docker-engine.sh installs it)")
    runner = docker_runner_env()
    if not runner:
        missing("no Docker engine with the grading image (make test builds it)")
    tmp = tmp_path_factory.mktemp("flood")
    binary = tmp / "otter-service"
    # Static, so that it runs on any image: the grading image's Debian is
    # the container's base here (no registry for a distroless one).
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/otter-service"], cwd=ROOT, check=True,
                   env={**os.environ, "CGO_ENABLED": "0"})

    def start(svc_tmp, hub_env):
        env = service_env(svc_tmp, {**hub_env, **runner}, test_user=None)
        repo = pathlib.Path(env["OTTER_COURSE_REPOS"].split("=", 1)[1])
        handler = type("Git", (_GitHandler,), {"root": repo.parent})
        git = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=git.serve_forever, daemon=True).start()
        env["OTTER_COURSE_REPOS"] = f"8x=http://127.0.0.1:{git.server_address[1]}/{repo.name}"
        data = svc_tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env.update({"OTTER_LISTEN": f"127.0.0.1:{port}", "OTTER_DATA_DIR": "/var/lib/otter-service", "HOME": "/tmp",
                    "OTTER_DRAIN_DELAY": "0s"})
        for k in ("PATH", "OTTER_COMMAND"):
            env.pop(k, None)
        sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
        name = "otter-flood-" + uuid.uuid4().hex[:10]
        args = ["docker", "run", "-d", "--name", name, "--network", "host", "--memory", MEMORY, "--memory-swap", MEMORY,
                "--cpus", "1", "--user", "0", "--entrypoint", "/usr/local/bin/otter-service",
                "-v", f"{binary}:/usr/local/bin/otter-service:ro",
                "-v", f"{data}:/var/lib/otter-service", "-v", f"{sock}:/var/run/docker.sock"]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        subprocess.run(args + [runner["OTTER_GRADING_IMAGE"], "serve"], check=True, capture_output=True)
        svc = ContainerService(name, f"127.0.0.1:{port}")
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(svc.base + "/healthz", timeout=2).status_code == 200:
                    return svc
            except requests.RequestException:
                pass
            if not svc.inspect()["State"]["Running"] or time.time() > deadline:
                logs = svc.logs()
                svc.proc.wait()
                pytest.fail("the service's container did not start:\n" + logs)
            time.sleep(0.2)

    yield from run_hub(None, emulator, tmp, "external", start=start)


def big_notebook():
    """lab01-perfect with a markdown cell that brings it to just under BODY bytes."""
    nb = json.loads((SUBMISSIONS / "lab01-perfect.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "padding", "metadata": {}, "source": ""})
    size = len(json.dumps(nb).encode())
    nb["cells"][-1]["source"] = "x" * (BODY - size - 16)
    body = json.dumps(nb).encode()
    assert BODY - 64 < len(body) <= BODY, len(body)
    return body


async def upload(addr, head, body, chunk=256 << 10):
    """Sends one upload and returns (status, JSON body), or (None, error) if
    the connection ended without an answer. Reads while it sends: a refused
    upload is answered before its body is read."""
    host, port = addr.rsplit(":", 1)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 60)
    except (ConnectionError, OSError, asyncio.TimeoutError) as e:
        return None, "connecting: " + repr(e)
    answer = asyncio.ensure_future(read_answer(reader))
    try:
        writer.write(head)
        for i in range(0, len(body), chunk):
            if answer.done():
                break
            writer.write(body[i:i + chunk])
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # refused before the end: the answer is read below
    try:
        return await asyncio.wait_for(answer, 300)
    except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
        return None, repr(e)
    finally:
        writer.close()


async def read_answer(reader):
    status_line = await reader.readline()
    if not status_line.startswith(b"HTTP/"):
        raise ConnectionError(f"the connection ended without an answer ({status_line[:40]!r})")
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    data = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, json.loads(data or b"{}")


def test_flood_of_uploads(flood_hub):
    hub = flood_hub
    svc = hub.service
    body = big_notebook()
    tokens = [hub.token(u) for u in ("student1", "student2", "student3")]
    for token in tokens:  # the tokens work
        assert requests.get(svc.base + PREFIX, headers={"Authorization": "token " + token}, timeout=30).status_code == 200
    idle = svc.rss()

    # /healthz throughout.
    health, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                code = requests.get(svc.base + "/healthz", timeout=10).status_code
            except requests.RequestException as e:
                code = repr(e)
            health.append((code, time.monotonic() - t0))
            stop.wait(0.2)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()

    def head(i):
        h = f"POST {PREFIX} HTTP/1.1\r\nHost: {svc.addr}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        if i % 2:
            h += f"Authorization: token {tokens[i % 3]}\r\n"
        else:  # a browser not signed in, from the Hub's page
            h += f"Sec-Fetch-Site: same-origin\r\nOrigin: {hub.url}\r\n"
        return (h + "\r\n").encode()

    async def flood():
        uploads = asyncio.gather(*(upload(svc.addr, head(i), body) for i in range(CONNECTIONS)))
        return await asyncio.wait_for(uploads, 900)

    t0 = time.monotonic()
    try:
        answers = asyncio.run(flood())
        took = time.monotonic() - t0
        state = svc.inspect()["State"]
        assert state["Running"] and not state["OOMKilled"], (state, svc.logs())
        peak = svc.rss("VmHWM")
    finally:
        stop.set()
        prober.join()

    by_status = {}
    for status, _ in answers:
        by_status[status] = by_status.get(status, 0) + 1
    messages = {}
    for status, b in answers:
        if status and status >= 400:
            messages.setdefault((status, json.dumps(b)[:600]), 0)
            messages[(status, json.dumps(b)[:600])] += 1
    unanswered = [a for a in answers if a[0] is None]
    assert not unanswered, f"{len(unanswered)} uploads got no answer, e.g. {unanswered[:3]}; answers {by_status}"
    assert set(by_status) <= {202, 303, 429, 503}, by_status
    signed_in = [a for i, a in enumerate(answers) if i % 2]
    assert {s for s, _ in signed_in} <= {202, 429, 503} and by_status.get(202), by_status
    assert {s for i, (s, _) in enumerate(answers) if not i % 2} <= {303, 429, 503}, by_status
    assert by_status.get(503), f"nothing was refused for want of memory: {by_status}"
    bad_health = [h for h in health if h[0] != 200]
    assert health and not bad_health, f"/healthz failed during the flood: {bad_health[:5]}"

    # Everything accepted is graded, as the perfect notebook it is.
    accepted = [b for s, b in answers if s == 202]
    for i, b in enumerate(accepted):
        token = tokens[0]
        for t in tokens:  # the status is its student's
            if requests.get(svc.base + b["status_url"], headers={"Authorization": "token " + t}, timeout=30).status_code == 200:
                token = t
                break
        deadline = time.time() + 600
        while True:
            st = requests.get(svc.base + b["status_url"], headers={"Authorization": "token " + token}, timeout=30).json()
            if st["status"] in ("graded", "failed", "needs_review"):
                break
            assert time.time() < deadline, f"{b['status_url']} still {st['status']}"
            time.sleep(0.5)
        assert st["status"] == "graded" and st["grade"] == 1, st

    # Memory goes back near idle once the burst is over.
    deadline = time.time() + 120
    while (after := svc.rss()) > idle + 64:
        assert time.time() < deadline, f"resident memory {after} MiB two minutes after the burst; idle {idle} MiB"
        time.sleep(1)
    print(json.dumps({"connections": CONNECTIONS, "body_bytes": len(body), "seconds": round(took, 1), "answers": by_status,
                      "refusals": [f"{n} x {k[0]} {k[1]}" for k, n in messages.items()],
                      "idle_MiB": idle, "peak_MiB": peak, "after_MiB": after, "healthz_probes": len(health),
                      "healthz_max_s": round(max(d for _, d in health), 3)}))
