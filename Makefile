# Set-up is part of every target: the venv is (re)built from the hashed lock files when it is
# missing or older than them or pyproject.toml. `make lock` refreshes the locks after a dependency
# change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
LOCK := requirements.lock
BENCH_LOCK := requirements-bench.lock
# Held while the venv is built, so `make serve & make test` in a fresh clone build it once, not
# twice at once (two pips in one venv fail). The second make waits, finds the stamp fresh, skips.
BUILD_LOCK := .venv-build.flock
UV_VERSION := 0.13.9

.PHONY: serve test lint check bench bench-load bench-instructions soak lock clean

# The stamp is re-judged by a make run under the lock: whoever waited sees the first one's stamp.
ifdef KGW_VENV_LOCKED
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(BENCH_STAMP): $(STAMP) $(BENCH_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(BENCH_LOCK)
	touch $@
else
$(STAMP) $(BENCH_STAMP):
	flock $(BUILD_LOCK) $(MAKE) --no-print-directory KGW_VENV_LOCKED=1 $@
$(STAMP): pyproject.toml $(LOCK)
$(BENCH_STAMP): $(STAMP) $(BENCH_LOCK)
endif

# Resolve the whole tree (runtime + dev; + bench in the second lock, held to the first's pins) with
# hashes for every file, keeping existing pins unless UPGRADE=1. uv runs from a throwaway venv. The
# build backend and what its editable build asks for are locked too: the project installs without
# build isolation, so nothing unhashed is downloaded.
lock:
	@tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT && \
	$(PYTHON) -m venv "$$tools" && "$$tools/bin/pip" install --quiet uv==$(UV_VERSION) && \
	$(PYTHON) -c "import tomllib; \
	  print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	  > "$$tools/build.in" && \
	echo editables >> "$$tools/build.in" && \
	compile="$$tools/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)" && \
	eval "$$compile --extra dev -o $(LOCK) pyproject.toml - < $$tools/build.in" && \
	eval "$$compile --extra dev --extra bench -c $(LOCK) -o $(BENCH_LOCK) \
	  pyproject.toml - < $$tools/build.in" && \
	echo "$(LOCK) and $(BENCH_LOCK) refreshed; commit them (the next make rebuilds .venv)"

serve: $(STAMP)
	$(BIN)/kling-gateway serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

bench: $(STAMP)
	$(BIN)/python bench/create_path.py

# wrk-based load comparison (Debian's wrk, installed here when missing) + docs/img/load.png via matplotlib
bench-load: $(BENCH_STAMP)
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
	rm -rf $(VENV) $(BUILD_LOCK) .pytest_cache .mypy_cache .ruff_cache
