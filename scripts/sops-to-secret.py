#!/usr/bin/env python3
"""Turns the old otter-service's decrypted sops files into the Kubernetes
Secret otter-service reads (deployment/kubernetes/README.md, "Secrets").

The old service kept its credentials in sops-encrypted YAML files:
  gke_key.yaml  LTI_CONSUMER_KEY, LTI_CONSUMER_SECRET
  gh_key.yaml   github_app_id, github_app_installation_id, github_app_private_key,
                and per course  <course>: {autograder_repo: github.com/ORG/REPO,
                                           github_access_token: ...}  (older files)
This reads them decrypted (YAML or JSON, one file per argument, "-" for
standard input) and writes to standard output the Secret whose keys the
service container mounts as files under /etc/otter-service/secrets, which the
ConfigMap's *_FILE settings name:

  sops -d gke_key.yaml > /dev/shm/lti.yaml; sops -d gh_key.yaml > /dev/shm/gh.yaml
  python3 scripts/sops-to-secret.py --namespace otter-prod \\
      --from-file jupyterhub-api-token=/dev/shm/hub-token \\
      --from-file google-application-credentials.json=/dev/shm/sa.json \\
      --config-patch deployment/kubernetes/overlays/production/courses.yaml \\
      /dev/shm/lti.yaml /dev/shm/gh.yaml | kubectl apply -f -
  rm /dev/shm/lti.yaml /dev/shm/gh.yaml

The settings that are not secret (OTTER_COURSE_REPOS, the App's ids, the
*_FILE names of per-course tokens) go into --config-patch: a patch of the
ConfigMap otter-service-config for the overlay's kustomization.yaml.

Anything it does not know is refused, all of it named at once, with exit
status 2 and nothing written: a key it would silently drop could be a
credential the service then lacks. Values are never printed in messages.
Needs only the standard library for JSON input (sops -d --output-type json);
YAML input needs PyYAML.
"""

import argparse
import base64
import json
import re
import sys

SECRET_DIR = "/etc/otter-service/secrets"

# Old top-level key -> (key of the new Secret, setting naming its file).
SECRETS = {
    "LTI_CONSUMER_KEY": ("lti-consumer-key", "LTI_CONSUMER_KEY_FILE"),
    "LTI_CONSUMER_SECRET": ("lti-consumer-secret", "LTI_CONSUMER_SECRET_FILE"),
    "JUPYTERHUB_API_TOKEN": ("jupyterhub-api-token", "JUPYTERHUB_API_TOKEN_FILE"),
    "jh_api_token": ("jupyterhub-api-token", "JUPYTERHUB_API_TOKEN_FILE"),
    "github_app_private_key": ("github-app-private-key", "OTTER_GITHUB_APP_PRIVATE_KEY_FILE"),
}
# Old top-level key -> setting (not secret: into the ConfigMap patch).
SETTINGS = {
    "github_app_id": "OTTER_GITHUB_APP_ID",
    "github_app_installation_id": "OTTER_GITHUB_APP_INSTALLATION_ID",
}
# Keys of a course's entry.
COURSE_KEYS = {"autograder_repo", "github_access_token"}

# The keys the base ConfigMap names files of: the pod does not start without
# them (deployment/kubernetes/base/configmap.yaml).
REQUIRED = [
    "jupyterhub-api-token",
    "lti-consumer-key",
    "lti-consumer-secret",
    "github-app-private-key",
    "google-application-credentials.json",
]

SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class Refused(Exception):
    """The input cannot be converted; the message lists every problem."""


def env_suffix(course):
    """The course's suffix of per-course settings, as the service forms it:
    upper case, characters other than letters and digits as _."""
    return "".join(c.upper() if c.isascii() and c.isalnum() else "_" for c in course)


def repo_url(course, value, problems):
    """The old autograder_repo (github.com/ORG/REPO) as a clone URL."""
    if not isinstance(value, str) or not value.strip():
        problems.append(f"course {course!r}: autograder_repo is not a string")
        return None
    v = value.strip()
    if re.match(r"^[a-z+]+://", v) or re.match(r"^[^/@]+@[^:]+:", v):
        url = v
    else:
        url = "https://" + v
    if "@" in url.split("://", 1)[-1].split("/", 1)[0] and url.startswith("http"):
        problems.append(f"course {course!r}: autograder_repo holds credentials; give them as github_access_token")
        return None
    if url.startswith("https://github.com/") and not url.endswith(".git"):
        url += ".git"
    return url


def load(name, text):
    """Parses one decrypted file: YAML if PyYAML is there, else JSON."""
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        try:
            return json.loads(text)
        except ValueError as e:
            raise Refused(f"{name}: not JSON ({e.msg}); install PyYAML for YAML, or use sops -d --output-type json") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise Refused(f"{name}: not YAML: {str(e).splitlines()[0]}") from None


def encrypted(value):
    return isinstance(value, str) and value.startswith("ENC[")


def convert(documents, extra_files=None):
    """Converts the parsed files ([(name, mapping)]) and the extra secret
    files ({key: bytes}) into (secret data {key: bytes}, settings {name: value}).
    Raises Refused naming every problem."""
    problems = []
    data, settings, origin = {}, {}, {}
    repos = []

    def put_secret(key, value, where):
        if key in origin:
            problems.append(f"{where}: {key} is also given by {origin[key]}")
            return
        origin[key] = where
        data[key] = value if isinstance(value, bytes) else str(value).encode()

    for name, doc in documents:
        if doc is None:
            problems.append(f"{name}: empty")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{name}: not a mapping of keys")
            continue
        if "sops" in doc:
            problems.append(f"{name}: still encrypted (it has sops metadata): decrypt it with sops -d first")
            continue
        for key, value in doc.items():
            where = f"{name}: {key}"
            if not isinstance(key, str):
                problems.append(f"{name}: key {key!r} is not a string")
                continue
            if encrypted(value):
                problems.append(f"{where}: still encrypted: decrypt the file with sops -d first")
                continue
            if key in SECRETS:
                secret_key, setting = SECRETS[key]
                if not isinstance(value, (str, int)) or str(value).strip() == "":
                    problems.append(f"{where}: empty or not a string")
                    continue
                # A PEM key keeps its lines; a token loses stray whitespace.
                put_secret(secret_key, str(value) if "\n" in str(value).strip() else str(value).strip(), where)
                settings[setting] = f"{SECRET_DIR}/{secret_key}"
            elif key in SETTINGS:
                if not isinstance(value, (str, int)) or str(value).strip() == "":
                    problems.append(f"{where}: empty or not a string or number")
                    continue
                setting = SETTINGS[key]
                if setting in settings and settings[setting] != str(value).strip():
                    problems.append(f"{where}: {setting} is given twice with different values")
                    continue
                settings[setting] = str(value).strip()
            elif isinstance(value, dict):
                course = key
                unknown = sorted(set(map(str, value)) - COURSE_KEYS)
                if unknown:
                    problems.append(f"{where}: unknown course keys {', '.join(unknown)} (known: {', '.join(sorted(COURSE_KEYS))})")
                    continue
                if "autograder_repo" not in value:
                    problems.append(f"{where}: a course entry without autograder_repo")
                    continue
                if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", course):
                    problems.append(f"{where}: course name {course!r} has characters the service does not take")
                    continue
                url = repo_url(course, value["autograder_repo"], problems)
                if url is None:
                    continue
                repos.append((course, url))
                token = value.get("github_access_token")
                if token is not None:
                    if encrypted(token):
                        problems.append(f"{where}: github_access_token is still encrypted: decrypt the file with sops -d first")
                        continue
                    if not isinstance(token, str) or not token.strip():
                        problems.append(f"{where}: github_access_token is empty or not a string")
                        continue
                    secret_key = "git-token-" + re.sub(r"[^-._a-zA-Z0-9]", "-", course.lower())
                    put_secret(secret_key, token.strip(), where + ".github_access_token")
                    settings[f"OTTER_GIT_TOKEN_{env_suffix(course)}_FILE"] = f"{SECRET_DIR}/{secret_key}"
            else:
                problems.append(f"{where}: unknown key (known: {', '.join(sorted(SECRETS) + sorted(SETTINGS))}, or a course: {{autograder_repo, github_access_token}})")

    for key, value in (extra_files or {}).items():
        if not SECRET_KEY.match(key):
            problems.append(f"--from-file {key}: not a valid Secret key")
            continue
        put_secret(key, value, f"--from-file {key}")

    if repos:
        courses = [c for c, _ in repos]
        dup = sorted({c for c in courses if courses.count(c) > 1})
        if dup:
            problems.append(f"course(s) given twice: {', '.join(dup)}")
        settings["OTTER_COURSE_REPOS"] = ",".join(f"{c}={u}" for c, u in repos)
        app = "OTTER_GITHUB_APP_ID" in settings
        tokens = [c for c, _ in repos if f"OTTER_GIT_TOKEN_{env_suffix(c)}_FILE" in settings]
        if app and tokens:
            # A course's token would take its own variable, the App the
            # plain one: the service refuses a course with both.
            problems.append(f"course(s) {', '.join(tokens)} have a github_access_token and a GitHub App is given too; keep one kind of credentials")
    if "OTTER_GITHUB_APP_ID" in settings or "OTTER_GITHUB_APP_INSTALLATION_ID" in settings or "github-app-private-key" in data:
        for need, what in (("OTTER_GITHUB_APP_ID", "github_app_id"), ("OTTER_GITHUB_APP_INSTALLATION_ID", "github_app_installation_id")):
            if need not in settings:
                problems.append(f"a GitHub App is given without {what}")
        if "github-app-private-key" not in data:
            problems.append("a GitHub App is given without github_app_private_key")
    if repos and "github-app-private-key" not in data and "OTTER_GITHUB_APP_ID" not in settings:
        # No App: the base ConfigMap's App settings must go, or they would
        # apply to every course (a patch's null removes a key).
        for key in ("OTTER_GITHUB_APP_ID", "OTTER_GITHUB_APP_INSTALLATION_ID", "OTTER_GITHUB_APP_PRIVATE_KEY_FILE"):
            settings[key] = None
    if problems:
        raise Refused("\n".join(problems))
    return data, settings


def missing_required(data, settings):
    """The keys the base ConfigMap names files of that the Secret lacks
    (less those whose settings the patch removes)."""
    dropped = set()
    if "OTTER_GITHUB_APP_PRIVATE_KEY_FILE" in settings and settings["OTTER_GITHUB_APP_PRIVATE_KEY_FILE"] is None:
        dropped.add("github-app-private-key")
    return [k for k in REQUIRED if k not in data and k not in dropped]


def q(s):
    """A YAML scalar for any string (JSON strings are YAML)."""
    return json.dumps(s)


def secret_manifest(data, name, namespace):
    lines = ["# Made by scripts/sops-to-secret.py. Holds credentials: apply it, do not commit it.",
             "apiVersion: v1", "kind: Secret", "metadata:", f"  name: {q(name)}"]
    if namespace:
        lines.append(f"  namespace: {q(namespace)}")
    lines += ["type: Opaque", "data:"]
    for key in sorted(data):
        lines.append(f"  {q(key)}: {base64.b64encode(data[key]).decode()}")
    return "\n".join(lines) + "\n"


def config_patch(settings, name):
    lines = ["# Made by scripts/sops-to-secret.py: the settings of the old sops files that",
             "# are not secret, as a patch of the ConfigMap (list it under patches: in the",
             "# overlay's kustomization.yaml).",
             "apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {q(name)}", "data:"]
    for key in sorted(settings):
        value = settings[key]
        lines.append(f"  {key}: {'null' if value is None else q(value)}")
    return "\n".join(lines) + "\n"


def main(argv=None, stdin=None, stdout=None, stderr=None):
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", default=["-"], help="decrypted sops files (YAML or JSON); - for standard input (the default)")
    ap.add_argument("--name", default="otter-service-secrets", help="the Secret's name (default: %(default)s)")
    ap.add_argument("--namespace", help="the Secret's namespace")
    ap.add_argument("--from-file", action="append", default=[], metavar="KEY=PATH",
                    help="a further key of the Secret from a file (jupyterhub-api-token, google-application-credentials.json, ...)")
    ap.add_argument("--config-patch", metavar="FILE", help="write the settings that are not secret to FILE as a ConfigMap patch")
    ap.add_argument("--config-name", default="otter-service-config", help="the ConfigMap patched (default: %(default)s)")
    ap.add_argument("--allow-missing", action="store_true",
                    help=f"do not refuse a Secret lacking keys the base ConfigMap names ({', '.join(REQUIRED)})")
    args = ap.parse_args(argv)
    try:
        documents = []
        for f in args.files:
            if f == "-":
                documents.append(("<stdin>", load("<stdin>", stdin.read())))
            else:
                with open(f, encoding="utf-8") as fh:
                    documents.append((f, load(f, fh.read())))
        extra = {}
        for spec in args.from_file:
            key, sep, path = spec.partition("=")
            if not sep or not key or not path:
                raise Refused(f"--from-file {spec!r}: want KEY=PATH")
            with open(path, "rb") as fh:
                extra[key] = fh.read()
        data, settings = convert(documents, extra)
        missing = missing_required(data, settings)
        if missing and not args.allow_missing:
            raise Refused("the Secret would lack " + ", ".join(missing) +
                          ", which the ConfigMap names (give them with --from-file KEY=PATH, or --allow-missing"
                          " if the overlay drops their settings)")
    except (Refused, OSError) as e:
        print(f"sops-to-secret: refused:\n{e}", file=stderr)
        return 2
    if args.config_patch:
        with open(args.config_patch, "w", encoding="utf-8") as fh:
            fh.write(config_patch(settings, args.config_name))
    stdout.write(secret_manifest(data, args.name, args.namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
