#!/usr/bin/env bash
# Compares the cost of one grading in the Docker runner now (A: the kernel
# as the student's uid, the grader on its own side) with the design before
# it (B: otter's own grading command, tests in the kernel; commit 331b048),
# in one run: B and A interleaved, ROUNDS rounds (default 5) of N gradings
# each (default 3), reporting per-round figures and the min and median.
# Needs the Docker engine and the grading image (make grader-image).
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
n=${N:-3}
old=var/bench-separation-old
if [ ! -d "$old" ]; then
  git worktree add --detach "$old" 331b048 >/dev/null
fi
cp grading/docker/bench_test.go "$old/grading/docker/bench_test.go" # the same benchmark in both
run() { (cd "$1" && go test -run '^$' -bench '^BenchmarkGrading$' -benchtime "${n}x" -count 1 ./grading/docker/ | awk '/^BenchmarkGrading/ {print $5, $7}'); }
: >var/bench-separation.txt
: >var/bench-separation.data
for i in $(seq "$rounds"); do
  read -r bw bc < <(run "$old")
  read -r aw ac < <(run .)
  echo "round $i: before ${bw} s ${bc} cpu-s, now ${aw} s ${ac} cpu-s" | tee -a var/bench-separation.txt
  echo "$bw $bc $aw $ac" >>var/bench-separation.data
done
python3 - var/bench-separation.data "$rounds" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]).read().split("\n") if l.strip()][-int(sys.argv[2]):]
cols = list(zip(*rows))
for name, i in (("before: wall", 0), ("before: cpu", 1), ("now: wall", 2), ("now: cpu", 3)):
    print(f"{name:14} min {min(cols[i]):.3f} s  median {statistics.median(cols[i]):.3f} s")
for what, b, a in (("wall", 0, 2), ("cpu", 1, 3)):
    print(f"{what}: now / before (medians) = {statistics.median(cols[a]) / statistics.median(cols[b]):.3f}")
PY
