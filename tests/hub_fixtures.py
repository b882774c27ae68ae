"""A real JupyterHub in front of the service, for the authentication tests.

The `hub` fixture starts, on loopback and free ports:
1. the service, with the JUPYTERHUB_* environment an external JupyterHub
   service is given (and no TEST_USER), on the Firestore emulator so that the
   grade records can be read; it starts before the Hub and must put up with
   the Hub not answering yet;
2. a small HTTP server for the external service "page": an empty HTML page
   that the browser test loads from the Hub's origin;
3. JupyterHub (from the test virtualenv) with tests/hub/jupyterhub_config.py,
   which registers the service with deployment/jupyterhub/external.py and runs
   configurable-http-proxy from tests/hub/node_modules.
The `managed_hub` fixture is the same with deployment/jupyterhub/managed.py:
the Hub starts the service itself. Users' API tokens are made through the
Hub's REST API with a token of the fixture's own service. Everything is
stopped afterwards.

The `chromium` fixture is a headless Debian Chromium driven by selenium with
the system's chromedriver (selenium downloads nothing)."""

import html.parser
import http.server
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from conftest import PREFIX, ROOT, firestore_client, firestore_env, missing, service_env, start_service

HUB_DIR = ROOT / "tests" / "hub"
CHP = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE_NAME = "otter_grade"
PAGE_PREFIX = "/services/page/"
PASSWORD = "not-a-secret-" + secrets.token_hex(4)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The page the browser test opens at /services/page/: nothing but a body.
PAGE = b"<!doctype html>\n<html><head><meta charset=utf-8><title>page</title></head><body></body></html>\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.startswith(PAGE_PREFIX):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


class _XSRFField(html.parser.HTMLParser):
    """The value of the login form's hidden _xsrf input."""

    value = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") == "_xsrf":
            self.value = a.get("value")


class Hub:
    """A running Hub: url is its public address (the proxy), through which
    every request to the service goes."""

    def __init__(self, url, hub_api, admin_token, page_token, service, db, environment, log):
        self.url = url
        self.api = url + "/hub/api"
        self.hub_api = hub_api
        self.admin_token = admin_token
        self.page_token = page_token
        self.service = service
        self.db = db
        self.environment = environment
        self.log = log
        self._tokens = {}

    def admin(self, method, path, **kw):
        resp = requests.request(method, self.hub_api + path, headers={"Authorization": "token " + self.admin_token}, timeout=30, **kw)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def token(self, user):
        """An API token of user, made through the Hub's REST API."""
        if user not in self._tokens:
            self._tokens[user] = self.admin("POST", f"/users/{user}/tokens", json={"note": "pytest", "expires_in": 3600})["token"]
        return self._tokens[user]

    def request(self, method, path, token=None, headers=None, **kw):
        """A request through the proxy; token, if given, as Authorization: token."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "token " + token
        return requests.request(method, self.url + path, headers=h, timeout=60, **kw)

    def login(self, user, session=None):
        """A requests.Session logged in to the Hub as user through its login
        form (the _xsrf field included)."""
        s = session or requests.Session()
        form = s.get(self.url + "/hub/login", timeout=30)
        form.raise_for_status()
        parser = _XSRFField()
        parser.feed(form.text)
        data = {"username": user, "password": PASSWORD}
        if parser.value:
            data["_xsrf"] = parser.value
        resp = s.post(self.url + "/hub/login?next=%2Fhub%2Fhome", data=data, allow_redirects=False, timeout=30)
        assert resp.status_code == 302, (resp.status_code, resp.text[:500])
        home = s.get(self.url + "/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
        return s

    def browser_login(self, driver, user):
        """Logs driver (selenium) in to the Hub as user through its login form."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver.get(self.url + "/hub/login")
        driver.find_element(By.NAME, "username").send_keys(user)
        password = driver.find_element(By.NAME, "password")
        password.send_keys(PASSWORD)
        password.submit()
        WebDriverWait(driver, 30).until(lambda d: "/hub/home" in d.current_url)

    def wait_done(self, status_url, token, timeout=300):
        """Polls a submission's status (through the proxy, with token) until it is graded or failed."""
        deadline = time.time() + timeout
        while True:
            resp = self.request("GET", status_url, token=token)
            assert resp.status_code == 200, (resp.status_code, resp.text)
            body = resp.json()
            if body["status"] in ("graded", "failed"):
                return body
            assert time.time() < deadline, f"{status_url} still {body['status']}"
            time.sleep(0.25)

    def record(self, kind, sid):
        """The service's Firestore document of a submission: kind is
        "submissions" or "grades"; None if absent."""
        doc = self.db.collection(f"{self.environment}-{kind}").document(sid).get()
        return doc.to_dict() if doc.exists else None


def _wait_http(url, what, proc, log, ok=(200,), timeout=60):
    """Waits until url answers with a status in ok."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n" + log.read_text()[-5000:])
        try:
            if requests.get(url, timeout=2, allow_redirects=False, headers={"Accept": "application/json"}).status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer {url} in {timeout}s:\n" + log.read_text()[-5000:])


def _stop(proc, timeout=20):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # JupyterHub runs the proxy in its own process group (its session).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_hub(binary, emulator, tmp, mode, start=None):
    """Starts the service and a Hub as the module's docstring says; mode is
    "external" or "managed". Yields a Hub. start, for an external service,
    starts it instead of start_service: start(tmp, env) returns an object
    with the service's addr and a proc to terminate and wait for."""
    jupyterhub = pathlib.Path(sys.executable).parent / "jupyterhub"
    if not jupyterhub.exists():
        missing("jupyterhub is not installed in the test virtualenv (make test installs it)")
    if not CHP.exists() or not shutil.which("node"):
        missing("configurable-http-proxy is not installed in tests/hub (make test installs it)")

    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    hub_api = f"http://127.0.0.1:{hub_port}/hub/api"
    service_token, page_token, admin_token = (secrets.token_hex(32) for _ in range(3))
    environment = "pytesthub" + uuid.uuid4().hex[:10]
    store = {**firestore_env(emulator, environment), "OTTER_STAFF_GROUP": "staff"}
    settings = {"mode": mode, "port": port, "hub_port": hub_port, "proxy_api_port": proxy_api_port, "password": PASSWORD}

    # 1. The service: before the Hub exists, or (managed) as the Hub will start it.
    service = None
    if mode == "external":
        env = {
            **store,
            "JUPYTERHUB_API_URL": hub_api,
            "JUPYTERHUB_API_TOKEN": service_token,
            "JUPYTERHUB_SERVICE_NAME": SERVICE_NAME,
            "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
            "JUPYTERHUB_CLIENT_ID": "service-" + SERVICE_NAME,
            "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={SERVICE_NAME}", "access:services"]),
            "JUPYTERHUB_PUBLIC_URL": url + "/",
            "JUPYTERHUB_BASE_URL": "/",
        }
        if start:
            service = start(tmp / "otter", env)
        else:
            service = start_service(binary, tmp / "otter", env, test_user=None)
        settings.update(service_url=f"http://{service.addr}", service_token=service_token)
    else:
        listen = f"127.0.0.1:{free_port()}"
        env = service_env(tmp / "otter", {**store, "OTTER_LISTEN": listen}, test_user=None)
        settings.update(service_url=f"http://{listen}", service_command=[str(binary), "serve"], service_environment=env)

    # 2. The page service.
    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    threading.Thread(target=page.serve_forever, daemon=True).start()

    # 3. The Hub and its proxy.
    state = tmp / "state"
    state.mkdir()
    settings.update(dir=str(state), page_url=f"http://127.0.0.1:{page.server_address[1]}", page_token=page_token, admin_token=admin_token)
    settings_file = tmp / "settings.json"
    settings_file.write_text(json.dumps(settings))
    log = tmp / "jupyterhub.log"
    hub_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "CONFIGPROXY_", "OTTER_GRADE_"))}
    hub_env.pop("TEST_USER", None)
    hub_env["OTTER_TEST_HUB_SETTINGS"] = str(settings_file)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(jupyterhub), "-f", str(HUB_DIR / "jupyterhub_config.py")],
            cwd=state, env=hub_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_http(f"{hub_api}/", "JupyterHub", proc, log)
        # The proxy has the Hub's and the services' routes once these answer through it.
        _wait_http(url + "/hub/api/", "the proxy", proc, log)
        _wait_http(url + PAGE_PREFIX, "the page service behind the proxy", proc, log)
        # Without credentials the service answers 401; the proxy, before it has the route, 404.
        _wait_http(url + PREFIX, "the service behind the proxy", proc, log, ok=(401,))
        running = Hub(url, hub_api, admin_token, page_token, service, firestore_client(emulator), environment, log)
        running.proc = proc  # for the test that takes the Hub down
        yield running
    finally:
        _stop(proc)
        page.shutdown()
        if service:
            service.proc.terminate()
            service.proc.wait(120)


@pytest.fixture(scope="session")
def hub(binary, emulator, tmp_path_factory):
    """The service as an external service of a Hub."""
    yield from run_hub(binary, emulator, tmp_path_factory.mktemp("hub"), "external")


@pytest.fixture(scope="module")
def managed_hub(binary, emulator, tmp_path_factory):
    """The service as a managed service of a Hub."""
    yield from run_hub(binary, emulator, tmp_path_factory.mktemp("managed-hub"), "managed")


@pytest.fixture
def chromium(tmp_path):
    """Headless Chromium with a fresh profile, driven through the system's chromedriver."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        missing(f"{CHROMIUM} and {CHROMEDRIVER} are needed (Debian's chromium and chromium-driver; make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()
