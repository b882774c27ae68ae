# %% [raw]
# # ASSIGNMENT CONFIG
# name: threshold
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# generate:
#   score_threshold: 0.6

# %% [markdown]
# # score_threshold: full marks at 60 % of the points, else none

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %%
a = 1 + 1 # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert a == 2

# %%
# HIDDEN
assert a * a == 4

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 1

# %%
b = "x" * 3 # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert len(b) == 3

# %%
# HIDDEN
assert b == "xxx"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 1

# %%
c = sorted([3, 1, 2]) # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert c[0] == 1

# %%
# HIDDEN
assert c == [1, 2, 3]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

