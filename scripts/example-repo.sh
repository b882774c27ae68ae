#!/usr/bin/env bash
# Makes DIR a git repository holding the example course materials
# (examples/course), committing only when they changed. The service reads
# course-config.json and the autograder zips from it, as it would from a
# course's private repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: example-repo.sh DIR}
mkdir -p "$dir"
if [ ! -d "$dir/.git" ]; then
  git -C "$dir" init -q -b main
fi
# Mirror the example course into the work tree (removing what it no longer has).
find "$dir" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
cp -R "$root/examples/course/." "$dir/"
git -C "$dir" add -A
if ! git -C "$dir" diff --cached --quiet 2>/dev/null || ! git -C "$dir" rev-parse -q --verify HEAD >/dev/null; then
  git -C "$dir" -c user.name="otter-service" -c user.email="otter-service@localhost" commit -q -m "Example course materials"
fi
