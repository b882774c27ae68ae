# %% [raw]
# # ASSIGNMENT CONFIG
# name: pkgs_req
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: true
# solutions_pdf: false
# template_pdf: false
# requirements: requirements.txt

# %% [markdown]
# # Packages from `requirements:`
# otter 7 puts them into environment.yml's pip list.

# %%
from tabulate import tabulate

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 3

# %% [markdown]
# Set `table` to `tabulate([[1, 2]], tablefmt="plain")`.

# %%
table = tabulate([[1, 2]], tablefmt="plain") # SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert table.split() == ["1", "2"]

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
