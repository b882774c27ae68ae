#!/usr/bin/env bash
# Regenerates the otter-grader results in grading/testdata from master
# notebooks written below, so that results_test.go reads what otter itself
# writes rather than numbers typed by hand:
#
#   bash grading/testdata/gen.sh
#
# For each case it writes <case>.otter_config.json (the otter_config.json of
# the autograder zip `otter assign` made; the tests zip it again),
# <case>.results.json (what otter wrote for one submission) and, but for the
# error case, <case>.score.txt (the "Total Score: total / possible (percent%)"
# line otter run printed: otter's own view of the grade). Needs the
# otter-grader virtualenv (${OTTER_VENV:-<repo>/.venv}, made by make setup).
# No network access is used.
#
# Every case grades the same kind of submission against three questions:
#   q1 (1 point, one public case): answered right;
#   q2 (2 points, one public and one hidden case of 1 point each): passes the
#      public case, fails the hidden one;
#   q3 (1 point, one public and one hidden case): answered wrong.
# So Σscore / Σmax_score = 2 / 4 = 0.5, and the assignment configuration
# (points_possible, score_threshold, show_hidden, ...) changes what otter
# writes around it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${OTTER_VENV:-$repo/.venv}
venv=$(cd "$venv" 2>/dev/null && pwd) || { echo "gen: no virtualenv at ${OTTER_VENV:-.venv}; run make setup" >&2; exit 1; }
[ -x "$venv/bin/otter" ] || { echo "gen: $venv/bin/otter not found; run make setup" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export IPYTHONDIR=$tmp/ipython TMPDIR=$tmp PATH=$venv/bin:$PATH

"$venv/bin/python" - "$here" "$tmp" <<'EOF'
import json, os, shutil, subprocess, sys, zipfile

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

out_dir, tmp = sys.argv[1:]

# case → (the assignment config's generate: section, master, submission kind)
CASES = {
    "default": ({}, "mixed", "partial"),
    "points_possible": ({"points_possible": 10}, "mixed", "partial"),
    "threshold_pass": ({"score_threshold": 0.5}, "mixed", "partial"),
    "threshold_fail": ({"score_threshold": 0.75}, "mixed", "partial"),
    "threshold_points": ({"score_threshold": 0.4, "points_possible": 10}, "mixed", "partial"),
    "show_hidden": ({"show_hidden": True, "show_stdout": True}, "mixed", "partial"),
    "show_all_public": ({"show_all_public": True}, "public", "partial"),
    "thirds_points": ({"points_possible": 7}, "thirds", "partial"),
    "error": ({}, "mixed", "wrong_assignment"),
}

# master → questions: (name, points, [(test code, hidden)], solution)
MASTERS = {
    "mixed": [
        ("q1", 1, [("assert x == 2", False)], "x = 2"),
        ("q2", 2, [("assert f(1) == 2", False), ("assert f(-1) == 0", True)], "f = lambda n: n + 1"),
        ("q3", 1, [("assert s == 'otter'", False), ("assert len(s) == 5", True)], "s = 'otter'"),
    ],
    "public": [
        ("q1", 1, [("assert x == 2", False)], "x = 2"),
        ("q2", 2, [("assert f(1) == 2", False), ("assert f(-1) == 0", False)], "f = lambda n: n + 1"),
        ("q3", 1, [("assert s == 'otter'", False), ("assert len(s) == 5", False)], "s = 'otter'"),
    ],
    # q2 is worth 1 point over three cases (1/3 each), of which one passes.
    "thirds": [
        ("q1", 1, [("assert x == 2", False)], "x = 2"),
        ("q2", 1, [("assert f(1) == 2", False), ("assert f(-1) == 0", False), ("assert f(0) == 1", True)],
         "f = lambda n: n + 1"),
        ("q3", 1, [("assert s == 'otter'", False), ("assert len(s) == 5", True)], "s = 'otter'"),
    ],
}

# The submission's answers, in place of the student notebook's placeholders
# (otter runs each question's tests where the notebook checks it, so answers
# must be where the questions are).
PARTIAL = {"x = ...": "x = 2", "f = ...": "f = lambda n: abs(n) + 1", "s = ...": "s = 'beaver'"}


def master(name, generate, questions):
    cfg = ["# ASSIGNMENT CONFIG", f"name: {name}", "init_cell: true", "check_all_cell: false",
           "export_cell: false", "run_tests: false", "solutions_pdf: false", "template_pdf: false",
           "generate:", "  pdf: false"]
    cfg += [f"  {k}: {json.dumps(v)}" for k, v in generate.items()]
    cells = [new_raw_cell("\n".join(cfg)), new_markdown_cell(f"# {name}")]
    for q, points, tests, solution in questions:
        cells += [new_raw_cell(f"# BEGIN QUESTION\nname: {q}\npoints: {points}"), new_markdown_cell(f"Question {q}."),
                  new_raw_cell("# BEGIN SOLUTION"), new_code_cell(solution + "  # SOLUTION"),
                  new_raw_cell("# END SOLUTION"), new_raw_cell("# BEGIN TESTS")]
        cells += [new_code_cell(("# HIDDEN\n" if hidden else "") + code) for code, hidden in tests]
        cells += [new_raw_cell("# END TESTS"), new_raw_cell("# END QUESTION")]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                             "language_info": {"name": "python"}})
    return nb


for case, (generate, kind, submission) in CASES.items():
    work = os.path.join(tmp, case)
    os.makedirs(work)
    name = "lab"
    os.makedirs(os.path.join(work, "master"))
    nbformat.write(master(name, generate, MASTERS[kind]), os.path.join(work, "master", f"{name}.ipynb"))
    subprocess.run(["otter", "assign", f"master/{name}.ipynb", "dist"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    zips = [f for f in os.listdir(os.path.join(work, "dist", "autograder")) if f.endswith(".zip")]
    assert len(zips) == 1, zips
    ag = os.path.join(work, "dist", "autograder", zips[0])
    with zipfile.ZipFile(ag) as z:
        config = json.loads(z.read("otter_config.json"))

    nb = nbformat.read(os.path.join(work, "dist", "student", f"{name}.ipynb"), as_version=4)
    for placeholder, answer in PARTIAL.items():
        cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == placeholder]
        assert len(cells) == 1, f"{case}: {len(cells)} cells hold {placeholder!r}"
        cells[0].source = answer
    if submission == "wrong_assignment":
        nb.metadata["otter"]["assignment_name"] = "another-lab"
    os.makedirs(os.path.join(work, "submission"))
    sub = os.path.join(work, "submission", f"{name}.ipynb")
    nbformat.write(nb, sub)

    if submission == "wrong_assignment":
        # otter run raises before copying results.json out; grade as the
        # grading container does, with run_autograder's main().
        ag_dir = os.path.join(work, "autograder")
        for d in ("source", "submission", "results"):
            os.makedirs(os.path.join(ag_dir, d))
        with zipfile.ZipFile(ag) as z:
            z.extractall(os.path.join(ag_dir, "source"))
        shutil.copy(sub, os.path.join(ag_dir, "submission"))
        with open(os.path.join(ag_dir, "submission_metadata.json"), "w") as f:
            f.write("{}")
        r = subprocess.run([sys.executable, "-c", f"from otter.run.run_autograder import main; main({ag_dir!r})"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        assert r.returncode != 0, "otter graded a notebook of another assignment"
        results = os.path.join(ag_dir, "results", "results.json")
    else:
        r = subprocess.run(["otter", "run", "--no-logo", "-a", ag, "-o", work, sub], cwd=work, check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        results = os.path.join(work, "results.json")
        score = [l for l in r.stdout.splitlines() if l.startswith("Total Score: ")]
        assert len(score) == 1, r.stdout
        with open(os.path.join(out_dir, f"{case}.score.txt"), "w") as f:
            f.write(score[0] + "\n")

    with open(os.path.join(out_dir, f"{case}.otter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copy(results, os.path.join(out_dir, f"{case}.results.json"))
    print(f"gen: {case}", file=sys.stderr)
EOF
