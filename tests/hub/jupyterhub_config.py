# The JupyterHub the tests run (tests/hub_fixtures.py starts it): on loopback,
# behind configurable-http-proxy from tests/hub/node_modules, with the
# otter_grade service registered by deployment/jupyterhub/external.py or
# managed.py (the settings' "mode"), and a second external service, "page",
# that serves an empty HTML page on the Hub's origin for the browser test.
# Nobody spawns a server.
#
# The ports, tokens and paths come from the JSON file named by
# OTTER_TEST_HUB_SETTINGS, which the fixture writes.
import json
import os
import pathlib

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

s = json.loads(pathlib.Path(os.environ["OTTER_TEST_HUB_SETTINGS"]).read_text())
here = pathlib.Path(__file__).resolve().parent
state = pathlib.Path(s["dir"])

c.JupyterHub.bind_url = f"http://127.0.0.1:{s['port']}/"
# As deployment/jupyterhub/managed.py advises (a managed service gets it as JUPYTERHUB_PUBLIC_URL).
c.JupyterHub.public_url = f"http://127.0.0.1:{s['port']}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub_port"]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.log_level = "INFO"
# Logged-in users land on the home page; nothing asks for a server.
c.JupyterHub.default_url = "/hub/home"

c.ConfigurableHTTPProxy.command = [str(here / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

# Everyone logs in with the same password.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = s["password"]
c.Authenticator.allowed_users = {"student1", "student2", "student3", "outsider", "ta", "teacher"}
c.Authenticator.admin_users = {"teacher"}

# Students (and course staff) may use the grading service; "outsider" is a
# user of the Hub without that access. "staff" is the service's
# OTTER_STAFF_GROUP: its members see every submission.
c.JupyterHub.load_groups = {
    "students": {"users": ["student1", "student2", "student3"]},
    "staff": {"users": ["ta"]},
}
c.JupyterHub.services = [
    {
        "name": "page",
        "url": s["page_url"],
        "api_token": s["page_token"],
    },
    {
        "name": "pytest-admin",
        "api_token": s["admin_token"],
    },
]

c.JupyterHub.load_roles = []

# The deployment's configuration of the service.
snippet = here.parent.parent / "deployment" / "jupyterhub" / f"{s['mode']}.py"
assert snippet.is_file(), snippet  # load_subconfig ignores a missing file
if s["mode"] == "external":
    os.environ["OTTER_GRADE_URL"] = s["service_url"]
    os.environ["OTTER_GRADE_API_TOKEN"] = s["service_token"]
load_subconfig(str(snippet))  # noqa: F821 (provided by JupyterHub)
(otter_grade,) = [svc for svc in c.JupyterHub.services if svc["name"] == "otter_grade"]
if s["mode"] == "managed":
    # This machine's binary, course repository and ports instead of the example's.
    otter_grade["command"] = s["service_command"]
    otter_grade["url"] = s["service_url"]
    otter_grade["environment"] = {**otter_grade["environment"], **s["service_environment"]}

# The deployment lets every user of the Hub submit (the "user" role). Here
# only the groups below may, so that "outsider" can be refused.
(user_role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
assert "access:services!service=otter_grade" in user_role["scopes"], user_role
c.JupyterHub.load_roles = [
    {
        "name": "otter-grade-users",
        "description": "Submit notebooks to the grading service",
        "scopes": ["access:services!service=otter_grade"],
        "groups": ["students", "staff"],
    },
    # The fixture's own token: creates users' API tokens through the REST API.
    {
        "name": "pytest-admin",
        "scopes": ["admin:users", "tokens", "admin:groups", "list:services", "read:services"],
        "services": ["pytest-admin"],
    },
]
