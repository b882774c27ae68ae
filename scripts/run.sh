#!/usr/bin/env bash
# `make run`: runs the service on the example course with the embedded store,
# grading in containers where a Docker engine with the grading image answers
# (make grader-image builds it), else with the local runner; submits one
# example notebook to show it grading, and keeps serving until Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${PORT:-10101}
export OTTER_LISTEN=${OTTER_LISTEN:-127.0.0.1:$port}
export OTTER_DATA_DIR=${OTTER_DATA_DIR:-$root/var}
export OTTER_COURSE_REPOS=${OTTER_COURSE_REPOS:-8x=$root/var/course-repo}
export OTTER_COMMAND=${OTTER_COMMAND:-$root/.venv/bin/otter}
export TEST_USER=${TEST_USER:-student}
export VERBOSE_LOGGING=${VERBOSE_LOGGING:-false}
bash scripts/example-repo.sh "$root/var/course-repo"
if [ -z "${OTTER_RUNNER:-}" ]; then
  image=${OTTER_GRADING_IMAGE:-otter-service-grader:local}
  if command -v docker >/dev/null 2>&1 && docker image inspect "$image" >/dev/null 2>&1; then
    export OTTER_RUNNER=docker OTTER_GRADING_IMAGE=$image
  else
    export OTTER_RUNNER=local
  fi
fi
case "$OTTER_RUNNER" in
  docker) echo "run: grading in Docker containers (image $OTTER_GRADING_IMAGE)" ;;
  *) echo "run: grading with the local runner (otter in .venv, unisolated: no Docker engine with the grading image here; make grader-image builds one)" ;;
esac

bin/otter-service serve &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
url="http://${OTTER_LISTEN}/services/otter_grade/"
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${url}submissions/none" || true)
  [ "$code" = 404 ] && break
  kill -0 $pid 2>/dev/null || exit 1
  sleep 0.2
done

nb=examples/submissions/lab01-partial.ipynb
echo
echo "== Submitting $nb (as the Submit button does: {\"nb\": <notebook>}) =="
body=$(python3 -c 'import json,sys; print(json.dumps({"nb": json.load(open(sys.argv[1]))}))' "$nb")
resp=$(curl -s -H 'Content-Type: application/json' --data-binary "$body" "$url")
echo "$resp"
status_path=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status_url"])' "$resp")
for _ in $(seq 300); do
  st=$(curl -s "http://${OTTER_LISTEN}${status_path}")
  case "$st" in *'"status":"graded"'*|*'"status":"failed"'*) break ;; esac
  sleep 1
done
echo "== Status =="
echo "$st" | python3 -m json.tool
cat <<TXT

The service is running on http://${OTTER_LISTEN} as TEST_USER=${TEST_USER} (development only:
no authentication). Submit a notebook yourself:

  curl -F file=@examples/submissions/lab01-perfect.ipynb ${url}
  curl -H 'Content-Type: application/json' --data-binary @examples/submissions/lab01-zero.ipynb ${url}

then follow the "status_url" it answers with:

  curl http://${OTTER_LISTEN}/services/otter_grade/submissions/<id>

or open ${url} in a browser: the page of your submissions (TEST_USER is
no course staff, so the course overview at ${url}staff is refused).

Readiness and metrics: http://${OTTER_LISTEN}/readyz and http://${OTTER_LISTEN}/metrics

Press Ctrl-C to stop.
TXT
wait $pid
