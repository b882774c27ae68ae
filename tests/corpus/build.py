"""Builds the fidelity corpus: autograder zips made by otter assign from the
master notebooks in masters/, the submissions listed in submissions.py, and,
with --expected, the grade `otter run` gives each submission.

Usage (with the complete environment's python, var/corpus-venv/bin/python):

    python tests/corpus/build.py OUT                  # zips and submissions into OUT
    python tests/corpus/build.py OUT --expected FILE  # and otter run's grades into FILE
    python tests/corpus/build.py --stamp              # the hash of the corpus's sources

OUT receives:
    course/course-config.json                course "corpus", section "1"
    course/materials/<assignment>-autograder.zip
    submissions/<id>/<notebook file name>   one directory per submission
    submissions/index.json                  id → {assignment, notebook}
    sources.sha256                          what it was built from (see sources_hash)

Each master is a Jupytext percent-format file, masters/<assignment>/<notebook
name>.py (the one whose first cell is the ASSIGNMENT CONFIG); the other files
of its directory are what the assignment config names (data files, a
requirements.txt, an environment.yml, a plugin module). It becomes
<notebook name>.ipynb and goes through `otter assign` as a course's would.
Zips are rewritten with fixed times and sorted entries, so the same masters
give the same bytes.

Expected grades are otter's own: `otter run` in this (complete) environment,
and grade = total / possible computed as otter's run_autograder does when it
prints "Total Score": the sum of the tests' scores over the sum of their
max_score, or, when results.json has a top-level "score", that score over
points_possible (if set) or the sum of max_score. An assignment this service
refuses (lang: r) is recorded as refused, not run.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import jupytext
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from submissions import SUBMISSIONS  # noqa: E402

COURSE, SECTION = "corpus", "1"
BIN = os.path.dirname(sys.executable)


def masters():
    """assignment → (master directory, notebook name without .py)."""
    out = {}
    root = os.path.join(HERE, "masters")
    for assignment in sorted(os.listdir(root)):
        d = os.path.join(root, assignment)
        found = []
        for f in sorted(os.listdir(d)):
            if f.endswith(".py"):
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    head = fh.read(200)
                if "# # ASSIGNMENT CONFIG" in head:
                    found.append(f[:-3])
        if len(found) != 1:
            sys.exit(f"build: {d} has {len(found)} master notebooks, want 1")
        out[assignment] = (d, found[0])
    return out


def quiet_env(tmp):
    env = dict(os.environ)
    env.update(HOME=tmp, IPYTHONDIR=os.path.join(tmp, "ipython"), TMPDIR=tmp, MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1", PATH=BIN + os.pathsep + env.get("PATH", ""))
    return env


def normalized_zip(src, dst):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in sorted(zin.infolist(), key=lambda i: i.filename):
            out = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            out.external_attr = info.external_attr
            out.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(out, zin.read(info))


def assign(assignment, master_dir, name, tmp, out):
    """Runs otter assign; returns the solutions notebook (a perfect submission)."""
    work = os.path.join(tmp, "assign", assignment)
    shutil.copytree(master_dir, work)
    src = os.path.join(work, name + ".py")
    nb = jupytext.read(src)
    os.remove(src)
    is_r = assignment == "rlang"
    nb.metadata = nbformat.from_dict({
        "kernelspec": ({"display_name": "R", "language": "R", "name": "ir"} if is_r else
                       {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}),
        "language_info": {"name": "R" if is_r else "python"},
        "otter_service": {"course": COURSE, "section": SECTION, "assignment": assignment},
    })
    for i, cell in enumerate(nb.cells):
        cell.id = f"{assignment}-{i:02d}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, os.path.join(work, name + ".ipynb"))
    dist = os.path.join(tmp, "dist", assignment)
    proc = subprocess.run([os.path.join(BIN, "otter"), "assign", name + ".ipynb", dist], cwd=work,
                          env=quiet_env(tmp), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"build: otter assign failed for {assignment}:\n{proc.stdout}\n{proc.stderr}")
    zips = [f for f in os.listdir(os.path.join(dist, "autograder")) if f.endswith(".zip")]
    if len(zips) != 1:
        sys.exit(f"build: otter assign made {len(zips)} zips for {assignment}, want 1")
    normalized_zip(os.path.join(dist, "autograder", zips[0]),
                   os.path.join(out, "course", "materials", f"{assignment}-autograder.zip"))
    return nbformat.read(os.path.join(dist, "autograder", name + ".ipynb"), as_version=4)


def edit(nb, sid, edits):
    """Applies a submission's edits: (old, new) replaces text in the one code
    cell holding old; ("after", old, code) inserts a code cell after it."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for e in edits:
        where = e[1] if e[0] == "after" else e[0]
        cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and where in c.source]
        if len(cells) != 1:
            sys.exit(f"build: submission {sid}: {len(cells)} code cells hold {where!r}, want 1")
        if e[0] == "after":
            nb.cells.insert(cells[0] + 1, nbformat.v4.new_code_cell(e[2], id=f"{sid}-{len(nb.cells)}"[:64]))
        else:
            nb.cells[cells[0]].source = nb.cells[cells[0]].source.replace(e[0], e[1])
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.validate(nb)
    return nb


def build(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "course", "materials"))
    ms = masters()
    index = {}
    with tempfile.TemporaryDirectory() as tmp:
        solutions = {a: (name, assign(a, d, name, tmp, out)) for a, (d, name) in ms.items()}
    for sid, spec in SUBMISSIONS.items():
        assignment = spec["assignment"]
        name, solved = solutions[assignment]
        filename = spec.get("notebook", name + ".ipynb")
        nb = edit(solved, sid, spec.get("edits", []))
        d = os.path.join(out, "submissions", sid)
        os.makedirs(d)
        nbformat.write(nb, os.path.join(d, filename))
        index[sid] = {"assignment": assignment, "notebook": filename}
    unused = set(ms) - {s["assignment"] for s in SUBMISSIONS.values()}
    if unused:
        sys.exit(f"build: masters without submissions: {sorted(unused)}")
    with open(os.path.join(out, "submissions", "index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
    config = {COURSE: {SECTION: {
        "course_id": "OtterService+Corpus+2026",
        "subpath_to_zips": "materials",
        "assignments": {a: hashlib.sha1(a.encode()).hexdigest()[:32] for a in ms},
    }}}
    with open(os.path.join(out, "course", "course-config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return index


def otter_grade(zip_path, nb_path, tmp):
    """otter run's outcome for one submission, in this environment."""
    with zipfile.ZipFile(zip_path) as z:
        config = json.loads(z.read("otter_config.json"))
    if config.get("lang", "python") != "python":
        return {"status": "failed", "code": "unsupported_autograder"}
    res = os.path.join(tmp, "results")
    os.makedirs(res)
    proc = subprocess.run([os.path.join(BIN, "otter"), "run", "--no-logo", "-a", zip_path, "-o", res, nb_path],
                          cwd=tmp, env=quiet_env(tmp), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    path = os.path.join(res, "results.json")
    if proc.returncode != 0 or not os.path.exists(path):
        return {"status": "failed"}
    with open(path) as f:
        results = json.load(f)
    scored = [t for t in results["tests"] if "max_score" in t]
    total = sum(t["score"] for t in scored)
    possible = sum(t["max_score"] for t in scored)
    if "score" in results:  # otter's own total (points_possible, score_threshold)
        total, possible = results["score"], config.get("points_possible") or possible
    return {
        "status": "graded",
        "grade": total / possible,
        "questions": [{"name": t["name"], "score": t["score"], "max_score": t["max_score"],
                       "visibility": t.get("visibility", "")} for t in scored],
    }


def expected(out, index, path):
    want = {}
    for sid, sub in sorted(index.items()):
        with tempfile.TemporaryDirectory() as tmp:
            nb = os.path.join(tmp, sub["notebook"])
            shutil.copy(os.path.join(out, "submissions", sid, sub["notebook"]), nb)
            zip_path = os.path.join(out, "course", "materials", sub["assignment"] + "-autograder.zip")
            got = otter_grade(zip_path, nb, tmp)
        print(f"expected: {sid}: {got['status']} {got.get('grade', got.get('code', ''))}", file=sys.stderr)
        want[sid] = {**sub, **got}
    with open(path, "w") as f:
        json.dump(want, f, indent=2, sort_keys=True)
        f.write("\n")


# The files a build is made from (everything in this directory but the
# expected grades and the README), hashed in a way grading/corpus_test.go
# repeats: for each file in sorted order of its slash-separated path,
# path NUL content NUL.
def sources_hash():
    h = hashlib.sha256()
    paths = []
    for d, dirs, files in os.walk(HERE):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), HERE).replace(os.sep, "/")
            if rel not in ("expected.json", "README.md"):
                paths.append(rel)
    for rel in sorted(paths):
        with open(os.path.join(HERE, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def main():
    args = sys.argv[1:]
    if args == ["--stamp"]:
        print(sources_hash())
        return
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--expected"):
        sys.exit(__doc__)
    out = os.path.abspath(args[0])
    index = build(out)
    if len(args) == 3:
        expected(out, index, args[2])
    with open(os.path.join(out, "sources.sha256"), "w") as f:
        f.write(sources_hash() + "\n")


if __name__ == "__main__":
    main()
