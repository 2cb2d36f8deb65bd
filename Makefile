# Two commands do all set-up on a fresh machine:
#   make up     install into .venv/ and run the portal with its workers (embedded PostgreSQL + Redis)
#   make test   install the same way and run the whole test suite against real services
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install up test lint typecheck bench clean-var

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

# mypy with django-stubs (config in pyproject.toml). Its plugin imports portal.settings: a
# DATABASE_URL that is only parsed and a secret key keep that from starting the embedded
# PostgreSQL or writing var/secret_key; settings makes only var/typecheck/ (and static/).
TYPECHECK_PATHS := portal apps workers ml tests bench manage.py

typecheck: install
	DATABASE_URL=postgresql://typecheck@localhost/typecheck DJANGO_SECRET_KEY=typecheck \
	PORTAL_VAR_DIR=$(CURDIR)/var/typecheck $(VENV)/bin/mypy $(TYPECHECK_PATHS)

bench: install
	$(PY) bench/run_all.py
