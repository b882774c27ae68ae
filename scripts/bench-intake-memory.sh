#!/usr/bin/env bash
# Compares the service's memory under a flood of held-back uploads (N
# connections, default 200, each announcing 10 MiB and sending all but its
# last byte) before the bound on bytes in flight (A: commit a2b4fb4) and
# now (B), in one run: A and B interleaved, ROUNDS rounds (default 3),
# reporting each round and the min and median of the peak and after-burst
# resident memory.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
n=${N:-200}
out=var/bench-intake-memory
rm -rf "$out" && mkdir -p "$out"
old=var/bench-intake-memory-old
[ -d "$old" ] || git worktree add --detach "$old" "${BASE:-a2b4fb4}" >/dev/null
(cd "$old" && go build -o "$PWD/../bench-intake-memory/A" ./cmd/otter-service)
go build -o "$out/B" ./cmd/otter-service
# A course repository of the example course, as the service reads one.
cp -r examples/course "$out/course"
git -C "$out/course" init -q && git -C "$out/course" add -A && git -C "$out/course" -c user.email=bench@localhost -c user.name=bench commit -qm course
for i in $(seq "$rounds"); do
  for v in A B; do
    python3 scripts/bench-intake-memory.py "$out/$v" "$n" "$PWD/$out/course" "$out" | tee -a "$out/results.jsonl"
  done
done
python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for v in ("A", "B"):
    r = [x for x in rows if x["binary"] == v]
    for k in ("peak_MiB", "after_MiB", "not_read"):
        xs = [x[k] for x in r]
        print(f"{v} {k}: min {min(xs)} median {statistics.median(xs)}")
PY
