# %% [raw]
# # ASSIGNMENT CONFIG
# name: possible
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# generate:
#   points_possible: 5

# %% [markdown]
# # points_possible: the questions add up to 3 points, the total is out of 5

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %%
a = 2 ** 10 # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert a > 1000

# %%
# HIDDEN
assert a == 1024

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %%
b = list(reversed("abc")) # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert b[0] == "c"

# %%
# HIDDEN
assert b == ["c", "b", "a"]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

