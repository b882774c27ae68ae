# The two commands of README.md: `make run` and `make test`. Both set up what
# they need (tools, Go modules, the Python environment with otter-grader) and
# are quick when it is already there.

GO ?= go
BIN := bin/otter-service

.PHONY: run test bench setup build examples clean

setup:
	@bash scripts/ensure-tools.sh
	@$(GO) mod download
	@bash scripts/python-env.sh

build:
	@$(GO) build -o $(BIN) ./cmd/otter-service

run: setup build
	@bash scripts/run.sh

test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	.venv/bin/python -m pytest -q tests

# Accept-path benchmark; figures go into BENCHMARKS.md.
bench: setup
	$(GO) test -run '^$$' -bench BenchmarkAccept -benchtime 4000x -count 3 ./service/httpapi/

# Regenerates the example course's zips and submissions with otter assign.
examples: setup
	bash examples/build.sh

clean:
	rm -rf bin var
