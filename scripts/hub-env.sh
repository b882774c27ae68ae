#!/usr/bin/env bash
# Installs configurable-http-proxy, the proxy JupyterHub runs in front of the
# Hub and its services, for the JupyterHub tests (tests/hub: the npm package
# pinned by package-lock.json) with the machine's npm configuration. JupyterHub
# itself comes from PyPI with tests/requirements.txt. Quick when it is already
# installed.
set -euo pipefail
cd "$(dirname "$0")/../tests/hub"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/configurable-http-proxy ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "hub-env: npm is needed for configurable-http-proxy" >&2
    exit 1
  fi
fi
echo "hub-env: installing configurable-http-proxy" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
