# traderunner: the two commands a new user needs are `make up` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine (Python >= 3.11 required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up test lint typecheck imports unit bench demo clean install browser

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "traderunner needs Python >= 3.11; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

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
