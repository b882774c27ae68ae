#!/usr/bin/env bash
# Makes sure the tools the build and tests need are on this machine: Go, git,
# Python 3 with venv, curl, procps (pgrep), and Debian's Chromium with its WebDriver (the
# JupyterHub tests drive a headless browser), and systemd (a test loads the
# deployment's env file through systemd's EnvironmentFile=). Installs what is missing with
# apt (as root), from the machine's configured Debian sources. Quick and
# silent when all is here. With the argument "run", only what running the
# service needs (no browser, no kustomize).
set -euo pipefail
only_run=false
[ "${1:-}" = run ] && only_run=true
missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
if ! $only_run; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  command -v systemd-run >/dev/null 2>&1 || missing+=(systemd)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: please install: ${missing[*]}" >&2
    exit 1
  fi
  echo "ensure-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# go.mod names the Go version; an older go fetches that toolchain itself
# through the module proxy (GOTOOLCHAIN=auto).
# kustomize renders the Kubernetes overlays in the deployment tests: kubectl
# carries it; where there is no kubectl, the pinned kustomize is built from
# the Go module proxy into GOPATH/bin.
$only_run && exit 0
gobin="$(go env GOPATH)/bin"
if ! command -v kubectl >/dev/null 2>&1 && ! command -v kustomize >/dev/null 2>&1 && [ ! -x "$gobin/kustomize" ]; then
  echo "ensure-tools: installing kustomize" >&2
  GOFLAGS= go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
fi
