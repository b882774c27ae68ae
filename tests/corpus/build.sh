#!/usr/bin/env bash
# Makes the fidelity corpus's complete environment (var/corpus-venv: the
# grading image's packages and the corpus's own) and builds the corpus into
# var/corpus, unless it is already built from the same sources. With
# --expected, also asks otter run for every submission's grade and writes
# tests/corpus/expected.json (commit it).
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/../.."
bash scripts/python-env.sh var/corpus-venv deployment/grader-image/requirements.txt tests/corpus/requirements.txt
py=var/corpus-venv/bin/python
if [ "${1:-}" = --expected ]; then
  exec "$py" tests/corpus/build.py var/corpus --expected tests/corpus/expected.json
fi
want=$("$py" tests/corpus/build.py --stamp)
if [ "$(cat var/corpus/sources.sha256 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "corpus: building var/corpus with otter assign" >&2
"$py" tests/corpus/build.py var/corpus
