#!/usr/bin/env bash
# Usage: npm-env.sh DIR
# Installs the npm packages DIR's package-lock.json pins (tests/emulator: the
# Firestore emulator; tests/hub: configurable-http-proxy, the proxy JupyterHub
# runs) with the machine's npm configuration, installing Debian's npm first if
# it is missing. Quick when they are already installed: a stamp records the
# lock file they were installed from.
set -euo pipefail
dir=${1:?usage: npm-env.sh DIR}
cd "$(dirname "$0")/../$dir"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm-env: npm is needed for $dir" >&2
    exit 1
  fi
fi
echo "npm-env: installing $dir's npm packages" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
