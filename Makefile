# Two commands do all set-up on a fresh machine:
#   make up     install into .venv/ and run the portal with its workers (embedded PostgreSQL + Redis)
#   make test   install the same way and run the whole test suite against real services
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install up test lint bench clean-var

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) bash scripts/install.sh
	@touch $@

up: install
	$(PY) manage.py up

test: install
	bash scripts/browser.sh
	PORTAL_VAR_DIR=$${PORTAL_VAR_DIR:-$(CURDIR)/var/test} $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/run_all.py
