#!/usr/bin/env bash
# Installs the Firestore emulator the tests use (tests/emulator: the npm
# package @firestore-emulator/server, pinned by package-lock.json) with the
# machine's npm configuration. Quick when it is already installed.
set -euo pipefail
cd "$(dirname "$0")/../tests/emulator"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "emulator-env: npm is needed for the Firestore emulator" >&2
    exit 1
  fi
fi
echo "emulator-env: installing the Firestore emulator" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
