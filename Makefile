# tap-klaviyo: `make demo` and `make test` work from a clean clone (Python >= 3.11, pip, make).
#
#   make demo   venv + project + Meltano, then `meltano run tap-klaviyo target-duckdb` against the bundled
#               emulator (or your Klaviyo account if TAP_KLAVIYO_API_KEY is set) and per-table row counts
#   make test   venv + project[test] + Meltano (+ Debian's postgresql package when the server binaries are
#               missing and we are root), then the whole test suite (tests/, end-to-end included)
#
# Meltano lives in its own virtual environment ($(MELTANO_VENV)): installed next to the tap, meltano 4.4.1
# (sqlalchemy<2.1) would downgrade the SQLAlchemy 2.1.x that singer-sdk 0.54.9 resolves to, and the tests
# would no longer run on the dependencies a user of the tap gets. Meltano installs each plugin in a venv
# of its own under .meltano/ anyway.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3)
VENV ?= .venv
MELTANO_VENV ?= .venv-meltano
MELTANO_VERSION := 4.4.1
PIP_INSTALL = -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?=

MELTANO := $(abspath $(MELTANO_VENV))/bin/meltano
BASE_STAMP := $(VENV)/.tap-klaviyo-installed
TEST_STAMP := $(VENV)/.tap-klaviyo-test-installed
MELTANO_STAMP := $(MELTANO_VENV)/.meltano-$(MELTANO_VERSION)-installed

.PHONY: help install install-test meltano postgres demo test clean

help:
	@echo "make demo    run tap-klaviyo into DuckDB with Meltano (emulator unless TAP_KLAVIYO_API_KEY is set)"
	@echo "make test    run the whole test suite, end-to-end Meltano runs included"
	@echo "make clean   remove the virtual environments, .meltano/ and demo output"

$(BASE_STAMP): pyproject.toml
	@scripts/venv.sh "$(PYTHON)" "$(VENV)"
	@echo "installing tap-klaviyo into $(VENV)"
	@$(VENV)/bin/python $(PIP_INSTALL) -e .
	@touch $@

$(TEST_STAMP): pyproject.toml
	@scripts/venv.sh "$(PYTHON)" "$(VENV)"
	@echo "installing tap-klaviyo[test] into $(VENV)"
	@$(VENV)/bin/python $(PIP_INSTALL) -e ".[test]"
	@touch $@ $(BASE_STAMP)

$(MELTANO_STAMP):
	@scripts/venv.sh "$(PYTHON)" "$(MELTANO_VENV)"
	@echo "installing meltano==$(MELTANO_VERSION) into $(MELTANO_VENV)"
	@$(MELTANO_VENV)/bin/python $(PIP_INSTALL) "meltano==$(MELTANO_VERSION)"
	@rm -f $(MELTANO_VENV)/.meltano-*-installed
	@touch $@

install: $(BASE_STAMP)
install-test: $(TEST_STAMP)
meltano: $(MELTANO_STAMP)

# PostgreSQL server binaries for tests/e2e/test_postgres.py (which starts its own throw-away server).
postgres:
	@scripts/postgres.sh

demo: $(BASE_STAMP) $(MELTANO_STAMP)
	@VENV="$(VENV)" MELTANO="$(MELTANO)" scripts/demo.sh

test: $(TEST_STAMP) $(MELTANO_STAMP) postgres
	MELTANO_BIN="$(MELTANO)" $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano output klaviyo-demo.duckdb
