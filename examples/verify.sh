#!/usr/bin/env bash
# Grades every example submission with `otter run` against its assignment's
# autograder zip and checks the outcome against examples/submissions/expected.json.
# Run after build.sh, from any directory:
#
#   bash examples/verify.sh
#
# "graded": otter run exited 0 and results.json gives the expected grade, where
# grade = sum(score) / sum(max_score) over the tests that have a max_score.
# "failed": otter run exited non-zero (it then writes no results.json).
set -euo pipefail

examples=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$examples")
cd "$repo"
venv=${OTTER_VENV:-.venv}
venv=$(cd "$venv" 2>/dev/null && pwd) || { echo "verify: no virtualenv at ${OTTER_VENV:-.venv}; run scripts/python-env.sh" >&2; exit 1; }
otter=$venv/bin/otter
python=$venv/bin/python
zips=$examples/course/materials/x22/lab/1
subs=$examples/submissions

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
for name in $("$python" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))))' "$subs/expected.json"); do
  lab=${name%%-*}
  out=$tmp/$name
  mkdir -p "$out/tmp"
  start=$(date +%s%N)
  rc=0
  env -i PATH=/usr/bin:/bin HOME="$out/tmp" TMPDIR="$out/tmp" \
    timeout 60 "$otter" run --no-logo -a "$zips/$lab-autograder.zip" -o "$out" "$subs/$name" \
    >"$out/stdout" 2>"$out/stderr" || rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if "$python" - "$subs/expected.json" "$name" "$rc" "$out/results.json" "$ms" <<'EOF'
import json, os, sys
expected_path, name, rc, results_path, ms = sys.argv[1:]
want = json.load(open(expected_path))[name]
rc = int(rc)
if rc == 0 and os.path.exists(results_path):
    tests = [t for t in json.load(open(results_path))["tests"] if "max_score" in t]
    got = {"status": "graded", "grade": sum(t["score"] for t in tests) / sum(t["max_score"] for t in tests)}
else:
    got = {"status": "failed"}
ok = got == want
print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {rc}, {ms} ms, got {got}, want {want}")
sys.exit(0 if ok else 1)
EOF
  then :; else
    status=1
    tail -n 5 "$out/stderr" >&2
  fi
done
exit $status
