# %% [raw]
# # ASSIGNMENT CONFIG
# name: rlang
# init_cell: false
# check_all_cell: false
# export_cell: false
# run_tests: false
# solutions_pdf: false
# template_pdf: false

# %% [markdown]
# # An R assignment (lang: r)
# This service grades Python notebooks only: submissions to it must be
# refused, naming the reason, and check-course must name it.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %%
x <- 2 + 2 # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
testthat::expect_equal(x, 4)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
