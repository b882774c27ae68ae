# %% [raw]
# # ASSIGNMENT CONFIG
# name: plugin
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# generate:
#   plugins:
#     - otter.plugins.builtin.RateLimiting:
#         hours: 1
#         allowed_submissions: 5

# %% [markdown]
# # A plugin: otter's RateLimiting, which reads submission_metadata.json (otter
# run writes `{}` there, with which it lets every submission through)

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %%
x = [i * i for i in range(4)] # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert x[-1] == 9

# %%
# HIDDEN
assert x == [0, 1, 4, 9]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %%
y = {"a": 1} | {"b": 2} # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert y["b"] == 2

# %%
# HIDDEN
assert y == {"a": 1, "b": 2}

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

