# Set-up is part of every target: the venv is (re)built from pyproject.toml when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint check bench bench-load bench-instructions soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/kling-gateway serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

check: lint test

bench: $(STAMP)
	$(BIN)/python bench/create_path.py

# wrk-based load comparison (Debian's wrk, installed here when missing) + docs/img/load.png via matplotlib
$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench-load: $(VENV)/.installed-bench
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/load.py

# instructions (callgrind) and system calls (strace) per create/GET; SRC="--src ../old/src --src src" for an A/B
bench-instructions: $(STAMP)
	command -v valgrind >/dev/null || apt-get install -y valgrind || (apt-get update && apt-get install -y valgrind)
	command -v strace >/dev/null || apt-get install -y strace || (apt-get update && apt-get install -y strace)
	$(BIN)/python bench/instructions.py $(SRC)
	$(BIN)/python bench/instructions.py --syscalls $(SRC)

# 10-minute soak with faults and gateway kills; exits non-zero if an invariant fails (MINUTES=2 for less)
MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
