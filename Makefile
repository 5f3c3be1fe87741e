# Developer shortcuts. Every target builds the virtualenv it needs first.
#   make bench         the full side-by-side benchmark (about 6 minutes)
#   make bench-quick   one short round, for a CI-like check (about a minute)
#   make test          the test suite with coverage
#   make lint          ruff and mypy

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
BENCH_ARGS ?=

.PHONY: bench bench-quick test lint clean-bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-quick: $(VENV)/.bench
	$(BIN)/python -m benchmarks --quick $(BENCH_ARGS)

test: $(VENV)/.test
	$(BIN)/python -m pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean-bench:
	rm -rf benchmarks/results
