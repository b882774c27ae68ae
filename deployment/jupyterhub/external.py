# otter-service as an external JupyterHub service: it runs on its own (a
# container, a Kubernetes Deployment, a systemd unit), and JupyterHub's proxy
# sends everything under /services/otter_grade/ to it.
#
# Load it from jupyterhub_config.py:
#     load_subconfig("/etc/jupyterhub/otter_grade_external.py")
# with, in the Hub's environment:
#     OTTER_GRADE_URL        where the Hub's proxy reaches the service
#                            (default http://127.0.0.1:10101)
#     OTTER_GRADE_API_TOKEN  the service's API token: a secret shared by the Hub
#                            and every replica of the service, which is given
#                            it as JUPYTERHUB_API_TOKEN (see otter-service.env).
#                            Make one with `openssl rand -hex 32`.
# The token is also the OAuth client secret, and the service derives the keys
# of its cookies from it: changing it signs every student out of the service
# (they are signed in again through the Hub on their next visit).
import os

c = get_config()  # noqa: F821 (provided by JupyterHub)

c.JupyterHub.services.append(
    {
        "name": "otter_grade",
        "url": os.environ.get("OTTER_GRADE_URL", "http://127.0.0.1:10101"),
        "api_token": os.environ["OTTER_GRADE_API_TOKEN"],
        # Part of the Hub: no "authorize this application?" page on the way
        # in. The Submit button's first POST goes through the Hub's authorize
        # step and cannot answer such a page.
        "oauth_no_confirm": True,
        # Listed in the Hub's Services menu, for those who may use it: the
        # service's pages (a student's submissions and grades, the course
        # staff's overview) open from there.
        "display": True,
        # Where the Hub sends the browser back after signing in; the service
        # must be given the same value as JUPYTERHUB_OAUTH_CALLBACK_URL.
        "oauth_redirect_uri": "/services/otter_grade/oauth_callback",
    }
)

# Every user of the Hub may submit. To let only some users submit, give the
# scope to a group instead, e.g.
#     {"name": "otter-grade", "scopes": ["access:services!service=otter_grade"], "groups": ["students"]}
# Defining the "user" role replaces its default scopes: keep "self".
c.JupyterHub.load_roles.append(
    {
        "name": "user",
        "scopes": ["self", "access:services!service=otter_grade"],
    }
)
