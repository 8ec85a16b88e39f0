# Every target installs what it needs: a fresh clone needs only `make dev` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: setup dev test lint format bench down clean

setup: $(STAMP) $(CHROMIUM_STAMP)

# torch is pinned to the CPU build (an unpinned torch pulls gigabytes of CUDA packages);
# it must be installed before sentence-transformers so pip keeps it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[local-ml,dev]"
	touch $(STAMP)

# The browser tests (test_ui.py, test_api_web.py) drive Debian's chromium through Playwright; they skip
# without it. Installed when missing and we are root; never fatal (no apt, no network: the tests skip).
$(CHROMIUM_STAMP): $(STAMP)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "could not install chromium: the browser tests will skip"; \
	fi
	touch $(CHROMIUM_STAMP)

# Embedded services, Dagster (`dg dev` on the [tool.dg] project), the API and the sample documents; the
# terminal shows the sensor's ticks, runs started and finished, and failed documents with the reason.
dev: setup
	$(BIN)/docflow dev

test: setup
	$(BIN)/ruff check docflow docflow_tests tools
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check docflow docflow_tests tools
	$(BIN)/ruff format --check docflow docflow_tests tools
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format docflow docflow_tests tools
	$(BIN)/ruff check --fix docflow docflow_tests tools

bench: setup
	$(BIN)/docflow bench

down: setup
	$(BIN)/docflow down

clean: down
	rm -rf .docflow
