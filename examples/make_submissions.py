"""Writes the example student submissions and their expected grades.

Usage: python make_submissions.py STUDENT_DIR OUT_DIR

STUDENT_DIR holds the student notebooks otter assign made (lab01.ipynb,
lab02.ipynb). Each submission is a copy of one of them with the `...`
placeholders of the answer cells filled in, so nothing is edited by hand. The
notebooks keep all their metadata (kernelspec, otter, otter_service).

Every question is worth 1 point, so a submission's grade is the number of
questions it answers correctly divided by the number of questions. An answer is
either right (passes the public and the hidden tests) or wrong (fails all of
them), which keeps the arithmetic exact.
"""

import json
import os
import sys

import nbformat

# The placeholder each answer cell holds in the student notebook → the answer.
# A placeholder must occur in exactly one cell, so edits to the masters that
# break this table fail the build instead of producing a wrong submission.
RIGHT = {
    "lab01": {
        "q1": ("square_of_seven = ...", "square_of_seven = 7 ** 2"),
        "q2": ("def double(x):\n    ...", "def double(x):\n    return 2 * x"),
        "q3": ("mean_value = ...", "mean_value = np.mean(data)"),
    },
    "lab02": {
        "q1": ("evens = ...", "evens = list(range(0, 11, 2))"),
        "q2": (
            "def count_vowels(s):\n    ...",
            'def count_vowels(s):\n    return sum(1 for c in s.lower() if c in "aeiou")',
        ),
    },
}

# Wrong answers: the code runs, but fails the public and hidden tests.
WRONG = {
    "lab01": {
        "q1": "square_of_seven = 7 * 2",
        "q2": "def double(x):\n    return x + 2",
        "q3": "mean_value = np.sum(data)",
    },
}

# A cell students copy from Colab to "restart the runtime". It kills the
# kernel, so otter run stops with nbclient's DeadKernelError: exit code 1 and
# no results.json. (An ordinary exception such as 1/0 does not fail grading:
# otter runs the rest of the notebook and grades it.)
KILL_KERNEL = "# restart the runtime so the new packages are picked up\nimport os\nos._exit(00)"

# name → (assignment, questions answered wrongly, extra cell after the imports, expected)
SUBMISSIONS = {
    "lab01-perfect.ipynb": ("lab01", [], None, {"status": "graded", "grade": 3 / 3}),
    "lab01-partial.ipynb": ("lab01", ["q3"], None, {"status": "graded", "grade": 2 / 3}),
    "lab01-zero.ipynb": ("lab01", ["q1", "q2", "q3"], None, {"status": "graded", "grade": 0 / 3}),
    "lab01-error.ipynb": ("lab01", [], KILL_KERNEL, {"status": "failed"}),
    "lab02-perfect.ipynb": ("lab02", [], None, {"status": "graded", "grade": 2 / 2}),
}


def answer(nb, placeholder, code):
    cells = [c for c in nb.cells if c.cell_type == "code" and placeholder in c.source]
    if len(cells) != 1:
        sys.exit(f"make_submissions: {len(cells)} cells hold {placeholder!r}, want 1")
    cells[0].source = cells[0].source.replace(placeholder, code)


def make(student_dir, assignment, wrong, extra):
    nb = nbformat.read(os.path.join(student_dir, assignment + ".ipynb"), as_version=4)
    if nb.metadata.get("otter_service", {}).get("assignment") != assignment:
        sys.exit(f"make_submissions: {assignment}.ipynb lacks otter_service metadata")
    for question, (placeholder, right) in RIGHT[assignment].items():
        answer(nb, placeholder, WRONG[assignment][question] if question in wrong else right)
    if extra is not None:
        imports = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("import ")]
        nb.cells.insert(imports[0] + 1, nbformat.v4.new_code_cell(extra, id="restart-runtime"))
    nbformat.validate(nb)
    return nb


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    student_dir, out_dir = sys.argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    expected = {}
    for name, (assignment, wrong, extra, want) in SUBMISSIONS.items():
        nbformat.write(make(student_dir, assignment, wrong, extra), os.path.join(out_dir, name))
        expected[name] = want
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
