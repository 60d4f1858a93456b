# traderunner: the two commands a new user needs are `make up` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine (Python >= 3.11 required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: up test lint typecheck imports unit bench demo clean install browser lock

UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.lock)

# Installs exactly the versions in requirements.lock (the tested ones) with uv, from PyPI.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "traderunner needs Python >= 3.11; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

## lock: re-resolve requirements.lock from pyproject.toml (then run make test)
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

install: $(STAMP) browser

## browser: Debian's chromium and chromium-driver for the dashboard's browser tests (tests/e2e)
# Idempotent: installs only when either binary is missing (as root, or through sudo).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium and chromium-driver (Debian) for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

## up: run traderunner on this machine (Redis, worker, dashboard, Flower; Ctrl-C stops it)
up: $(STAMP)
	$(BIN)/traderunner up

## test: lint, type-check, dependency contracts, then the whole test suite
# Two pytest processes (one file stays in one process: module fixtures hold real servers).
# The suite is mostly subprocess start-ups and waits, so 2 halves it on a 2-core machine.
TEST_WORKERS ?= 2
test: $(STAMP) browser lint typecheck imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

## bench: benchmarks against vectorbt and backtesting.py (figures in benchmarks/results/)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/bus.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
