"""scripts/sops-to-secret.py: the old service's decrypted sops files become
the Secret (and the ConfigMap patch) the Kubernetes manifests use."""

import base64
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, missing

SCRIPT = ROOT / "scripts" / "sops-to-secret.py"
KUBE = ROOT / "deployment" / "kubernetes"

# The old service's files, decrypted (sops -d), with the key names it used.
GKE_KEY = """\
LTI_CONSUMER_KEY: lti-key-1234
LTI_CONSUMER_SECRET: lti-secret-5678
"""
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAtest\nline2\n-----END RSA PRIVATE KEY-----\n"
GH_KEY = f"""\
github_app_id: "3484933"
github_app_installation_id: "126605153"
github_app_private_key: |
{"".join("    " + line + chr(10) for line in PEM.splitlines())}\
8x:
    autograder_repo: github.com/edx-berkeley/8X-autograders
88ex:
    autograder_repo: github.com/edx-berkeley/88E-autograders
"""
# An older gh_key.yaml: a token per course, no App.
GH_KEY_TOKENS = """\
8x:
    github_access_token: ghp_token8x
    autograder_repo: github.com/edx-berkeley/8X-autograders
88ex:
    github_access_token: ghp_token88ex
    autograder_repo: github.com/edx-berkeley/88E-autograders
"""


def run(tmp_path, *args, stdin=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def extra_files(tmp_path):
    return ["--from-file", "jupyterhub-api-token=" + write(tmp_path, "hub-token", "hub-token-abcd\n"),
            "--from-file", "google-application-credentials.json=" + write(tmp_path, "sa.json", '{"type": "service_account"}')]


def secret_data(manifest):
    doc = yaml.safe_load(manifest)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Secret"
    return doc, {k: base64.b64decode(v).decode() for k, v in doc["data"].items()}


def configmap_file_keys():
    """The Secret keys the base ConfigMap names files of."""
    cm = yaml.safe_load((KUBE / "base" / "configmap.yaml").read_text())
    prefix = "/etc/otter-service/secrets/"
    return {v[len(prefix):] for v in cm["data"].values() if isinstance(v, str) and v.startswith(prefix)}


def test_app_files_become_the_secret_and_the_config_patch(tmp_path):
    patch = tmp_path / "courses.yaml"
    r = run(tmp_path, "--namespace", "otter-prod", "--config-patch", str(patch), *extra_files(tmp_path),
            write(tmp_path, "gke_key.yaml", GKE_KEY), write(tmp_path, "gh_key.yaml", GH_KEY))
    assert r.returncode == 0, r.stderr
    doc, data = secret_data(r.stdout)
    assert doc["metadata"] == {"name": "otter-service-secrets", "namespace": "otter-prod"}
    assert data == {
        "lti-consumer-key": "lti-key-1234",
        "lti-consumer-secret": "lti-secret-5678",
        "github-app-private-key": PEM,
        "jupyterhub-api-token": "hub-token-abcd\n",
        "google-application-credentials.json": '{"type": "service_account"}',
    }
    # Exactly the files the base ConfigMap names, and the template's keys.
    assert set(data) == configmap_file_keys()
    template = yaml.safe_load((KUBE / "secret.template.yaml").read_text())
    assert set(template["stringData"]) == set(data)

    cm = yaml.safe_load(patch.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "otter-service-config"
    assert cm["data"] == {
        "OTTER_COURSE_REPOS": "8x=https://github.com/edx-berkeley/8X-autograders.git,"
                              "88ex=https://github.com/edx-berkeley/88E-autograders.git",
        "OTTER_GITHUB_APP_ID": "3484933",
        "OTTER_GITHUB_APP_INSTALLATION_ID": "126605153",
        "OTTER_GITHUB_APP_PRIVATE_KEY_FILE": "/etc/otter-service/secrets/github-app-private-key",
        "LTI_CONSUMER_KEY_FILE": "/etc/otter-service/secrets/lti-consumer-key",
        "LTI_CONSUMER_SECRET_FILE": "/etc/otter-service/secrets/lti-consumer-secret",
    }
    # Nothing secret in the patch.
    assert "lti-key-1234" not in patch.read_text() and "BEGIN RSA" not in patch.read_text()


def test_standard_input_and_json(tmp_path):
    """sops -d file | script, and sops -d --output-type json."""
    r = run(tmp_path, "--allow-missing", stdin=GKE_KEY)
    assert r.returncode == 0, r.stderr
    assert secret_data(r.stdout)[1] == {"lti-consumer-key": "lti-key-1234", "lti-consumer-secret": "lti-secret-5678"}
    r = run(tmp_path, "--allow-missing", "-", stdin='{"LTI_CONSUMER_KEY": "k", "LTI_CONSUMER_SECRET": "s"}')
    assert r.returncode == 0, r.stderr
    assert secret_data(r.stdout)[1] == {"lti-consumer-key": "k", "lti-consumer-secret": "s"}


def test_per_course_tokens(tmp_path):
    """The older files: a token per course, each its own file and setting;
    the base's GitHub App settings are removed by the patch."""
    patch = tmp_path / "courses.yaml"
    r = run(tmp_path, "--config-patch", str(patch), *extra_files(tmp_path),
            write(tmp_path, "gke_key.yaml", GKE_KEY), write(tmp_path, "gh_key.yaml", GH_KEY_TOKENS))
    assert r.returncode == 0, r.stderr
    _, data = secret_data(r.stdout)
    assert data["git-token-8x"] == "ghp_token8x" and data["git-token-88ex"] == "ghp_token88ex"
    assert "github-app-private-key" not in data
    cm = yaml.safe_load(patch.read_text())["data"]
    assert cm["OTTER_GIT_TOKEN_8X_FILE"] == "/etc/otter-service/secrets/git-token-8x"
    assert cm["OTTER_GIT_TOKEN_88EX_FILE"] == "/etc/otter-service/secrets/git-token-88ex"
    assert cm["OTTER_GITHUB_APP_ID"] is None and cm["OTTER_GITHUB_APP_INSTALLATION_ID"] is None
    assert cm["OTTER_GITHUB_APP_PRIVATE_KEY_FILE"] is None


def test_unknown_keys_are_refused_all_at_once(tmp_path):
    text = GKE_KEY + "LTI_CONSUMER_SECRETS: typo-value-1\nslack_webhook: typo-value-2\n8x:\n    autograder_repo: github.com/o/r\n    branch: main\n"
    r = run(tmp_path, *extra_files(tmp_path), write(tmp_path, "gh_key.yaml", GH_KEY), write(tmp_path, "bad.yaml", text))
    assert r.returncode == 2
    assert r.stdout == ""
    for name in ("LTI_CONSUMER_SECRETS", "slack_webhook", "branch"):
        assert name in r.stderr
    assert "typo-value" not in r.stderr and "lti-secret-5678" not in r.stderr


def test_encrypted_and_conflicting_input_is_refused(tmp_path):
    enc = "LTI_CONSUMER_KEY: ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]\nsops:\n    version: 3.8.1\n"
    r = run(tmp_path, "--allow-missing", write(tmp_path, "enc.yaml", enc))
    assert r.returncode == 2 and "sops -d" in r.stderr and r.stdout == ""
    r = run(tmp_path, "--allow-missing", write(tmp_path, "enc2.yaml", enc.split("sops:")[0]))
    assert r.returncode == 2 and "still encrypted" in r.stderr
    # The same key from two files.
    r = run(tmp_path, "--allow-missing", write(tmp_path, "a.yaml", GKE_KEY), write(tmp_path, "b.yaml", GKE_KEY))
    assert r.returncode == 2 and "also given by" in r.stderr
    # A course token beside a GitHub App: the service would refuse the course.
    both = GH_KEY + "88bx:\n    autograder_repo: github.com/o/88b\n    github_access_token: t\n"
    r = run(tmp_path, "--allow-missing", write(tmp_path, "both.yaml", both))
    assert r.returncode == 2 and "88bx" in r.stderr


def test_missing_required_keys_are_refused(tmp_path):
    r = run(tmp_path, write(tmp_path, "gke_key.yaml", GKE_KEY), write(tmp_path, "gh_key.yaml", GH_KEY))
    assert r.returncode == 2
    assert "jupyterhub-api-token" in r.stderr and "google-application-credentials.json" in r.stderr
    assert r.stdout == ""


def test_config_patch_applies_to_the_overlay(tmp_path):
    """The patch, listed in an overlay, gives the rendered ConfigMap the
    courses and removes the App's settings where there is none."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        missing("kubectl is not installed (kubectl kustomize renders the overlays)")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    r = run(tmp_path, "--config-patch", str(overlay / "courses.yaml"), *extra_files(tmp_path),
            write(tmp_path, "gke_key.yaml", GKE_KEY), write(tmp_path, "gh_key.yaml", GH_KEY_TOKENS))
    assert r.returncode == 0, r.stderr
    shutil.copytree(KUBE / "base", tmp_path / "base")
    (overlay / "kustomization.yaml").write_text("resources: [../base]\npatches:\n  - path: courses.yaml\n")
    out = subprocess.run([kubectl, "kustomize", str(overlay)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cm = next(d for d in yaml.safe_load_all(out.stdout) if d["kind"] == "ConfigMap")["data"]
    assert cm["OTTER_COURSE_REPOS"].startswith("8x=https://github.com/edx-berkeley/8X-autograders.git,")
    assert cm["OTTER_GIT_TOKEN_8X_FILE"] == "/etc/otter-service/secrets/git-token-8x"
    for gone in ("OTTER_GITHUB_APP_ID", "OTTER_GITHUB_APP_INSTALLATION_ID", "OTTER_GITHUB_APP_PRIVATE_KEY_FILE"):
        assert gone not in cm
    assert cm["ENVIRONMENT"] == "otter-dev"  # the rest of the base stays


@pytest.mark.parametrize("repo,url", [
    ("github.com/org/repo", "https://github.com/org/repo.git"),
    ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
])
def test_repository_forms(tmp_path, repo, url):
    patch = tmp_path / "p.yaml"
    r = run(tmp_path, "--allow-missing", "--config-patch", str(patch), stdin=f"c1:\n  autograder_repo: {repo}\n")
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(patch.read_text())["data"]["OTTER_COURSE_REPOS"] == f"c1={url}"
