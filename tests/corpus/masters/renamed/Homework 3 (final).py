# %% [raw]
# # ASSIGNMENT CONFIG
# name: renamed
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false

# %% [markdown]
# # A notebook whose file name is not the assignment's
# The master is "Homework 3 (final).ipynb", so the notebook opens itself as
# `otter.Notebook("Homework 3 (final).ipynb")`; course-config.json calls the
# assignment "renamed".

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %%
total = sum(range(10)) # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert total == 45

# %%
# HIDDEN
assert total - 45 == 0

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 1

# %%
name = "otter".upper() # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert name == "OTTER"

# %%
# HIDDEN
assert name.isupper()

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

