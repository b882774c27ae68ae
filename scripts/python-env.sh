#!/usr/bin/env bash
# Creates (or reuses) a Python virtualenv: VENV holds the packages of the
# given requirements files. Idempotent: it reinstalls only when the lists
# change. Uses the machine's pip configuration.
#   python-env.sh .venv deployment/grader-image/requirements.txt   # otter-grader, for the local runner
#   python-env.sh .venv-tests tests/requirements.txt               # the integration suite
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: python-env.sh VENV REQUIREMENTS...}
shift
[ $# -gt 0 ] || { echo "python-env: no requirements file given" >&2; exit 2; }
stamp="$venv/.requirements.sha256"
want=$(cat "$@" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "python-env: Python >= 3.10 is required (found $("$python" --version 2>&1))" >&2
  exit 1
fi
if ! "$python" -m venv --help >/dev/null 2>&1; then
  echo "python-env: installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
echo "python-env: installing $(cat "$@" | grep -v '^#' | tr '\n' ' ')into $venv" >&2
"$python" -m venv "$venv"
args=()
for r in "$@"; do args+=(-r "$r"); done
"$venv/bin/pip" install --quiet --disable-pip-version-check "${args[@]}"
echo "$want" > "$stamp"
