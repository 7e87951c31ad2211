# flagops: `make run` runs the main job on the embedded defaults, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DIST ?= dist
# The embedded default object store: a local directory with the same semantics as S3.
TARGET ?= file://$(CURDIR)/$(DIST)/published

.PHONY: install run test validate compile clean

install: $(STAMP)

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./client -e '.[test]'
	touch $(STAMP)

validate: install
	$(BIN)/flagops validate

compile: install
	$(BIN)/flagops compile --out $(DIST)

run: install
	$(BIN)/flagops validate
	$(BIN)/flagops compile --out $(DIST)

test: install
	$(BIN)/pytest

clean:
	rm -rf $(DIST) site .pytest_cache
