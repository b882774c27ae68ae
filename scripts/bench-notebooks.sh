#!/usr/bin/env bash
# Compares where the embedded store keeps notebooks, in one run:
# BenchmarkNotebookStorage in service/sqlite/bench_test.go interleaves, for
# ROUNDS rounds (default 7; the order is reversed every other round):
#   A    segment files beside the database, a batch written with one pwrite
#        per notebook and flushed with one fsync, then the rows committed (the
#        store);
#   B    the notebooks as BLOBs in the database, in the rows' transaction
#        (the same group commit, no segment files);
#   B64  B with 64 KiB pages.
# VARIANTS picks some (default A,B,B64); commit 6aed3f8 has also the variant
# with one pwritev per batch (its A; its A1 is this A). Each run is a new
# database in DIR (default var/bench-notebooks, on the machine's disk: not a
# tmpfs) and 64 goroutines creating N300 (default 3000) notebooks of 300 KB, then N2M
# (default 400) of 2 MB, each flushed before CreateSubmission returns.
# Writes var/bench-notebooks.txt. About 2.5 minutes on 2 cores.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
dir=${DIR:-var/bench-notebooks}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
out=var/bench-notebooks.txt
{
  echo "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD)  cores: $(nproc)  go: $(go env GOVERSION)"
  echo "dir: $dir on $(df -T "$dir" | awk 'NR == 2 {print $2, $1}')"
  # The disk's flush rate, as BENCHMARKS.md quotes it: 256 MB written, then fsync.
  echo "disk: $(dd if=/dev/zero of="$dir/dd.tmp" bs=1M count=256 conv=fsync 2>&1 | tail -1)"
  rm -f "$dir/dd.tmp"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  OTTER_BENCH_DIR=$dir OTTER_BENCH_ROUNDS=${ROUNDS:-7} OTTER_BENCH_VARIANTS=${VARIANTS:-A,B,B64} \
    OTTER_BENCH_N300=${N300:-3000} OTTER_BENCH_N2M=${N2M:-400} \
    go test -count=1 -run '^$' -bench '^BenchmarkNotebookStorage$' -benchtime 1x -timeout 30m ./service/sqlite/
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
rmdir "$dir" 2>/dev/null || true
