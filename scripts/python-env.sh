#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv that holds otter-grader for the local
# grading runner and for building the example course, and pytest for the
# integration suite in tests/. Idempotent: it reinstalls
# only when the requirements list changes. Uses the machine's pip configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${OTTER_VENV:-.venv}
req=deployment/grader-image/requirements.txt
testreq=tests/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(cat "$req" "$testreq" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/otter" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
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
echo "python-env: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" -r "$testreq"
echo "$want" > "$stamp"
