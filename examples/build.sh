#!/usr/bin/env bash
# Builds the example course materials repository (examples/course) and the
# example student submissions (examples/submissions) from the otter master
# notebooks in examples/masters. Runnable from any directory:
#
#   bash examples/build.sh
#
# Needs the otter-grader virtualenv made by scripts/python-env.sh
# (${OTTER_VENV:-<repo>/.venv}; a relative OTTER_VENV is taken relative to the
# repository root, as python-env.sh does). No network access is used.
set -euo pipefail

examples=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$examples")
cd "$repo"
venv=${OTTER_VENV:-.venv}
venv=$(cd "$venv" 2>/dev/null && pwd) || { echo "build: no virtualenv at ${OTTER_VENV:-.venv}; run scripts/python-env.sh" >&2; exit 1; }
otter=$venv/bin/otter
python=$venv/bin/python
if [ ! -x "$otter" ]; then
  echo "build: $otter not found; run scripts/python-env.sh" >&2
  exit 1
fi

labs=(lab01 lab02)
# course-config.json: course 8x, section 1; assignment name → edX LTI block id.
course_id="BerkeleyX+Data8.1x+3T2022"
subpath="materials/x22/lab/1"
declare -A block_id=(
  [lab01]=6333e19d6b4d46f88df671ba50f616d8
  [lab02]=7393ab3b1bebe7c87c678281328bc2fa
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Keep otter and the Jupyter kernels it starts from writing to $HOME (~/.ipython)
# or leaving files in the system temp directory.
export IPYTHONDIR=$tmp/ipython TMPDIR=$tmp

course=$examples/course
zips=$course/$subpath
rm -rf "$course" "$examples/submissions"
mkdir -p "$zips"

for lab in "${labs[@]}"; do
  echo "build: otter assign masters/$lab.ipynb" >&2
  if ! (cd "$examples/masters" && "$otter" assign "$lab.ipynb" "$tmp/$lab") >"$tmp/$lab.log" 2>&1; then
    cat "$tmp/$lab.log" >&2
    echo "build: otter assign failed for $lab" >&2
    exit 1
  fi
  shopt -s nullglob
  made=("$tmp/$lab/autograder/$lab"-autograder_*.zip)
  shopt -u nullglob
  if [ "${#made[@]}" -ne 1 ]; then
    echo "build: expected one autograder zip for $lab, found ${#made[@]}" >&2
    exit 1
  fi
  # Copy the zip and the student notebook, making both byte-for-byte
  # reproducible: otter stamps zip entries with the build time, orders them
  # arbitrarily and gives the cells it adds random ids.
  "$python" - "${made[0]}" "$zips/$lab-autograder.zip" "$tmp/$lab/student/$lab.ipynb" "$zips/$lab.ipynb" "$lab" <<'EOF'
import sys, zipfile, nbformat
src_zip, dst_zip, src_nb, dst_nb, lab = sys.argv[1:]
with zipfile.ZipFile(src_zip) as zin, zipfile.ZipFile(dst_zip, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in sorted(zin.infolist(), key=lambda i: i.filename):
        out = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
        out.external_attr = info.external_attr
        out.compress_type = zipfile.ZIP_DEFLATED
        zout.writestr(out, zin.read(info))
nb = nbformat.read(src_nb, as_version=4)
want = {"course": "8x", "section": "1", "assignment": lab}
if nb.metadata.get("otter_service") != want:  # otter assign 7.0.0 keeps it; guard anyway
    nb.metadata["otter_service"] = want
for i, cell in enumerate(nb.cells):
    cell.id = f"{lab}-{i:02d}"
nbformat.validate(nb)
nbformat.write(nb, dst_nb)
EOF
done

"$python" - "$course/course-config.json" "$course_id" "$subpath" \
  "${labs[0]}" "${block_id[${labs[0]}]}" "${labs[1]}" "${block_id[${labs[1]}]}" <<'EOF'
import json, sys
path, course_id, subpath, *pairs = sys.argv[1:]
assignments = dict(zip(pairs[0::2], pairs[1::2]))
config = {"8x": {"1": {"course_id": course_id, "subpath_to_zips": subpath, "assignments": assignments}}}
with open(path, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
EOF

"$python" "$examples/make_submissions.py" "$zips" "$examples/submissions"
echo "build: wrote $course and $examples/submissions" >&2
