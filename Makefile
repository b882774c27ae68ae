# The two commands of README.md: `make run` and `make test`. Both set up what
# they need (tools, Go modules, the Python environment with otter-grader) and
# are quick when it is already there.

GO ?= go
BIN := bin/otter-service

.PHONY: run test bench setup setup-run build examples clean grader-image corpus corpus-expected

# What running needs: Go, git, Python with otter-grader.
setup-run:
	@bash scripts/ensure-tools.sh run
	@$(GO) mod download
	@bash scripts/python-env.sh .venv deployment/grader-image/requirements.txt

# What the tests need besides: the browser, kustomize, the test virtualenv,
# the Firestore emulator and JupyterHub's proxy.
setup: setup-run
	@bash scripts/ensure-tools.sh
	@bash scripts/python-env.sh .venv-tests tests/requirements.txt
	@bash scripts/npm-env.sh tests/emulator
	@bash scripts/npm-env.sh tests/hub

build:
	@$(GO) build -o $(BIN) ./cmd/otter-service

run: setup-run build
	@bash scripts/run.sh

# The Docker engine and the grading image, for the Docker runner and its
# tests. Where they cannot be had (no root, say) the Docker tests skip, except
# in CI, which requires them.
grader-image:
	@bash deployment/grader-image/build-local.sh || { [ "$$CI" != true ] && echo "make: no Docker engine or grading image; the Docker tests will be skipped" >&2; }

# The fidelity corpus (tests/corpus): its complete environment and its
# autograder zips and submissions, built with otter assign into var/corpus.
corpus:
	@bash tests/corpus/build.sh

# Regenerates tests/corpus/expected.json: the grade otter run gives each
# corpus submission in the complete environment. Commit the result.
corpus-expected:
	bash tests/corpus/build.sh --expected

test: setup grader-image corpus
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	.venv-tests/bin/python -m pytest -q tests

# Benchmarks; figures go into BENCHMARKS.md.
bench: setup grader-image
	$(GO) test -run '^$$' -bench 'BenchmarkAccept$$' -benchtime 4000x -count 3 ./service/httpapi/
	$(GO) test -run '^$$' -bench BenchmarkAcceptFirestore -benchtime 2000x ./service/httpapi/
	$(GO) test -run '^$$' -bench 'BenchmarkOverhead' -benchtime 10x -count 3 ./grading/docker/
	$(GO) test -run '^$$' -bench 'BenchmarkBurst' -benchtime 1x ./grading/docker/
	$(GO) test -run '^$$' -bench 'BenchmarkWarmCold' -benchtime 1x -timeout 90m ./grading/docker/
	$(GO) test -run '^$$' -bench . -benchtime 20x ./courseconfig/git/
	bash scripts/bench-separation.sh
	bash scripts/bench-intake-memory.sh
	bash scripts/bench-notebooks.sh

# Regenerates the example course's zips and submissions with otter assign.
examples: setup
	bash examples/build.sh

clean:
	rm -rf bin var
