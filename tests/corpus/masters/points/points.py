# %% [raw]
# # ASSIGNMENT CONFIG
# name: points
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false

# %% [markdown]
# # Points other than 1
# q1 is worth 2.5 points shared between a public and a hidden test case
# (partial credit); q2 is worth 0.5, all or nothing; q3 gives each test case
# its own points (1 and 2).

# %%
import math

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2.5

# %% [markdown]
# Write `area(r)`, the area of a circle of radius `r`.

# %%
def area(r):
    return math.pi * r ** 2 # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert math.isclose(area(1), math.pi)

# %%
# HIDDEN
assert math.isclose(area(2.5), math.pi * 6.25)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 0.5
# all_or_nothing: true

# %% [markdown]
# Set `words` to the list of words in `sentence`, lower-cased.

# %%
sentence = "The Quick brown Fox"
words = sentence.lower().split() # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert words[0] == "the"

# %%
# HIDDEN
assert words == ["the", "quick", "brown", "fox"]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: [1, 2]

# %% [markdown]
# Write `clip(x, lo, hi)`.

# %%
def clip(x, lo, hi):
    return max(lo, min(x, hi)) # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert clip(5, 0, 3) == 3

# %%
# HIDDEN
assert clip(-1, 0, 3) == 0 and clip(2, 0, 3) == 2

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
