# %% [raw]
# # ASSIGNMENT CONFIG
# name: pkgs_env
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# environment: environment.yml

# %% [markdown]
# # Packages from environment.yml
# A conda package (toolz) and a pip package (humanize) that the grading image
# does not have.

# %%
import toolz
import humanize

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %% [markdown]
# Set `counts` to `toolz.frequencies` of the letters of "banana".

# %%
counts = toolz.frequencies("banana") # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert counts["a"] == 3

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 1

# %% [markdown]
# Set `size` to `humanize.naturalsize(3000000)`.

# %%
size = humanize.naturalsize(3000000) # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert size == "3.0 MB"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
