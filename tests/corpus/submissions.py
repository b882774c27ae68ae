"""The corpus's submissions: each one is the solutions notebook otter assign
made for its assignment, with edits. An edit (old, new) replaces text in the
one code cell holding old; ("after", old, code) inserts a code cell after
that cell. "notebook" is the submission's file name when it is not the
master's. Expected grades are never written here: build.py --expected asks
otter run.
"""

SUBMISSIONS = {
    # Points other than 1, fractional, partial credit and all-or-nothing.
    "points-perfect": {"assignment": "points"},
    "points-partial": {
        "assignment": "points",
        "edits": [
            # q1: passes the public case only (half of 2.5 points).
            ("return math.pi * r ** 2", "return math.pi * r ** 2 if r < 2 else 0.0"),
            # q2: passes the public case only, and q2 is all or nothing.
            ("words = sentence.lower().split()", "words = sentence.lower().split()[:1]"),
            # q3: passes the 1-point case, fails the 2-point one.
            ("return max(lo, min(x, hi))", "return min(x, hi)"),
        ],
    },
    # An ordinary exception in a cell: otter runs on, and only the
    # questions that needed the cell lose points.
    "points-error-cell": {
        "assignment": "points",
        "edits": [("after", "import math", "1 / 0"), ("sentence = ", "sentence = undefined_name")],
    },
    # files/ data, datascience and matplotlib, a seed, pdf: true.
    "data-perfect": {"assignment": "data"},
    "data-wrong-top": {
        "assignment": "data",
        "edits": [('.column("name").item(0)', '.column("name").item(1)')],
    },
    # The student's own seed left in place of the autograder's: the hidden
    # test compares against the autograder's seed.
    "data-reseeded": {
        "assignment": "data",
        "edits": [("default_rng(rng_seed)", "default_rng(7)")],
    },
    # Packages declared in environment.yml (conda and pip) and in
    # requirements: (otter 7 writes both into environment.yml).
    "pkgs_env-perfect": {"assignment": "pkgs_env"},
    "pkgs_env-half": {"assignment": "pkgs_env", "edits": [("naturalsize(3000000)", "naturalsize(3000)")]},
    "pkgs_req-perfect": {"assignment": "pkgs_req"},
    # score_threshold 0.6: 2 of 3 questions is full marks, 1 of 3 is none.
    "threshold-two-of-three": {"assignment": "threshold", "edits": [('b = "x" * 3', 'b = "x" * 2')]},
    "threshold-one-of-three": {
        "assignment": "threshold",
        "edits": [('b = "x" * 3', 'b = "x" * 2'), ("c = sorted([3, 1, 2])", "c = [3, 1, 2]")],
    },
    # points_possible 5 with questions worth 3 points.
    "possible-perfect": {"assignment": "possible"},
    "possible-partial": {"assignment": "possible", "edits": [('b = list(reversed("abc"))', 'b = ["c"]')]},
    # The notebook opens itself as "Homework 3 (final).ipynb"; the
    # assignment is "renamed".
    "renamed-perfect": {"assignment": "renamed"},
    "renamed-partial": {"assignment": "renamed", "edits": [('name = "otter".upper()', 'name = "Otter"')]},
    # Plugins: otter's RateLimiting and a course plugin from files/.
    "plugin-perfect": {"assignment": "plugin"},
    "plugin-half": {"assignment": "plugin", "edits": [('y = {"a": 1} | {"b": 2}', 'y = {"b": 2}')]},
    # An R assignment: refused, for the reason named.
    "rlang-any": {"assignment": "rlang"},
}
