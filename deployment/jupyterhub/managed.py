# otter-service as a JupyterHub-managed service: the Hub starts it on its own
# machine, gives it the JUPYTERHUB_* environment (API URL, token, prefix, OAuth
# client and callback, access scopes), and starts it again if it exits. One
# process; for several replicas run it as an external service (external.py).
#
# Load it from jupyterhub_config.py:
#     load_subconfig("/etc/jupyterhub/otter_grade_managed.py")
# and adapt the command and the environment below. Set the Hub's public
# address too (c.JupyterHub.public_url = "https://hub.example.edu/"): the Hub
# then gives it to the service as JUPYTERHUB_PUBLIC_URL, the origin a
# cookie-only POST must come from, and an https one makes the service's
# cookies Secure.
import os  # noqa: F401 (for the api_token below)

c = get_config()  # noqa: F821 (provided by JupyterHub)

c.JupyterHub.services.append(
    {
        "name": "otter_grade",
        "command": ["/usr/local/bin/otter-service", "serve"],
        # Where the proxy reaches it: the same address as OTTER_LISTEN.
        "url": "http://127.0.0.1:10101",
        "oauth_no_confirm": True,
        # Listed in the Hub's Services menu, for those who may use it: the
        # service's pages (a student's submissions and grades, the course
        # staff's overview) open from there.
        "display": True,
        # The Hub passes only these variables, its own JUPYTERHUB_* ones and a
        # few of its environment's (PATH, the locale); everything else the
        # service reads goes here, DOCKER_HOST included if the engine is not
        # on the local socket (see "Configuration" in README.md).
        "environment": {
            "OTTER_LISTEN": "127.0.0.1:10101",
            "OTTER_COURSE_REPOS": "8x=/srv/courses/8x-materials",
            "OTTER_DATA_DIR": "/var/lib/otter-service",
            "OTTER_RUNNER": "docker",
            "OTTER_GRADING_IMAGE": "otter-service-grader:local",
            # Members of this Hub group (course staff) see every submission,
            # as Hub admins do.
            "OTTER_STAFF_GROUP": "course-staff",
            # Store in Cloud Firestore instead of the embedded store:
            # "GCP_PROJECT_ID": "my-project",
            # "ENVIRONMENT": "prod",
        },
        # Without "api_token" the Hub makes a new token at every start, which
        # also signs students out of the service (they are signed in again
        # through the Hub on their next visit). Set one to keep sessions
        # across Hub restarts:
        # "api_token": os.environ["OTTER_GRADE_API_TOKEN"],
        #
        # Run it as another local user than the Hub's (it needs the Docker
        # socket and its data directory, not the Hub's secrets):
        # "user": "otter",
    }
)

# Every user of the Hub may submit (see external.py for a group instead).
c.JupyterHub.load_roles.append(
    {
        "name": "user",
        "scopes": ["self", "access:services!service=otter_grade"],
    }
)
