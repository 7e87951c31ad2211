# flagops: `make run` runs the main job on the embedded defaults, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The TypeScript client (clients/typescript): npm ci from the committed lockfile, then tsc into dist/.
TS := clients/typescript
TS_STAMP := $(TS)/node_modules/.flagops-built
DIST ?= dist
# The embedded default object store: a local directory with the same semantics as S3.
TARGET ?= file://$(CURDIR)/$(DIST)/published
# The local store follows whatever is checked out (e.g. an older commit); real targets keep the
# rollback guard. Set PUBLISH_FLAGS= to keep it here too.
PUBLISH_FLAGS ?= --allow-rollback

# Bytecode as an installed package has it, whatever PYTHONDONTWRITEBYTECODE says: every flagops
# process (the tests start many) reads it instead of compiling each module again.
BYTECODE = $(BIN)/python -m compileall -q tools client scripts > /dev/null

.PHONY: install install-cli run test validate compile clean s3-up s3-down browser bench

install: $(STAMP) $(TS_STAMP)

# constraints.txt pins every version (the same in CI and here). The editable installs are plain
# path entries (editable_mode=compat), as light to import as an installed package: no import hook.
$(STAMP): pyproject.toml client/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e ./client -e '.[test]'
	$(BYTECODE)
	touch $(STAMP)

$(TS_STAMP): $(TS)/package.json $(TS)/package-lock.json $(TS)/tsconfig.json $(TS)/tsconfig.examples.json $(wildcard $(TS)/src/*.ts $(TS)/examples/*.ts)
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	touch $(TS_STAMP)

# The CLI without the test tools: CI's quick checks of every pull request.
install-cli:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e ./client -e .
	$(BYTECODE)

validate: install
	$(BIN)/flagops validate

compile: install
	$(BIN)/flagops compile --out $(DIST)

run: install
	$(BIN)/flagops validate
	$(BIN)/flagops compile --out $(DIST)
	@# Publish every compiled environment to the embedded object store (TARGET).
	@for m in $(DIST)/*/manifest.json; do \
	  $(BIN)/flagops publish --env "$$(basename "$$(dirname "$$m")")" --target $(TARGET) --from $(DIST) $(PUBLISH_FLAGS) || exit 1; \
	done

# Starts the local S3 server when none is up, and stops it again if it started it.
test: install browser
	@started=0; \
	if ! $(BIN)/python scripts/s3server.py status >/dev/null 2>&1; then \
	  $(BIN)/python scripts/s3server.py up || exit 1; started=1; \
	fi; \
	$(BYTECODE); \
	$(BIN)/pytest; rc=$$?; \
	(cd $(TS) && npm test) || rc=1; \
	if [ $$started = 1 ]; then $(BIN)/python scripts/s3server.py down; fi; \
	exit $$rc

# Debian's chromium for the dashboard's browser tests (no-op when present).
browser:
	bash scripts/install-browser.sh

# The local S3 server (SeaweedFS) the tests publish to; state and data under .s3/.
s3-up: install
	$(BIN)/python scripts/s3server.py up

s3-down:
	$(PYTHON) scripts/s3server.py down

# Benchmarks: one table (benchmarks/run.py). BENCH_ARGS=--quick leaves out 100,000 x 200.
# The peers (the `bench` extra) get their own venv: UnleashClient pins platformdirs 3, which
# the test tools in .venv cannot use. The local S3 server's binary comes from .venv.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet --config-settings editable_mode=compat -e ./client -e '.[bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(DIST) site .pytest_cache
