# %% [raw]
# # ASSIGNMENT CONFIG
# name: data
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# files:
#   - scores.csv
# seed:
#   variable: rng_seed
#   autograder_value: 42
#   student_value: 7
# generate:
#   pdf: true

# %% [markdown]
# # Data 8 style: a table from files/, a plot, a seeded simulation
# The autograder asks for a PDF (`pdf: true`), which this service does not
# make; grades do not depend on it.

# %%
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from datascience import Table

# %%
rng_seed = 7

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [markdown]
# Read `scores.csv` into a `Table` called `scores` and set `top` to the
# name with the highest score.

# %%
scores = Table.read_table("scores.csv") # SOLUTION
top = scores.sort("score", descending=True).column("name").item(0) # SOLUTION
scores.hist("score")
plt.close("all")

# %% [raw]
# # BEGIN TESTS

# %%
assert scores.num_rows == 5

# %%
# HIDDEN
assert top == "Dana"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 1

# %% [markdown]
# Set `draws` to 1000 draws from `rng.integers(0, 6)` and `mean_draw` to their
# mean. The autograder runs with another seed than yours.

# %%
rng = np.random.default_rng(rng_seed)
draws = rng.integers(0, 6, size=1000) # SOLUTION
mean_draw = draws.mean() # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert len(draws) == 1000

# %%
# HIDDEN
assert mean_draw == np.random.default_rng(42).integers(0, 6, size=1000).mean()

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
