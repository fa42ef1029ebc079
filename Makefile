# Seatwarden: `make demo` and `make test` work from a fresh clone on a fresh machine.
# They create .venv, install the pinned requirements and Azurite (npm, into node_modules/).
# The tests start Azurite on loopback themselves and always stop it (tests/conftest.py).
# `make test` also installs Debian's chromium (apt-get, as root) for the report's browser test,
# and makes that test fail rather than skip when the browser is missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: setup browser test lint demo bench soak audit-deps clean

setup: $(PY_OK) $(NODE_OK)

$(PY_OK): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_OK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium for tests/report/test_report_page.py, driven over the DevTools pipe.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "$(CHROMIUM) is missing and cannot be installed here (needs apt-get as root):" \
	         "the report's browser test will fail; install Debian's chromium package" >&2; \
	  fi; \
	fi

lint: $(PY_OK)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: setup browser lint
	SEATWARDEN_REQUIRE_BROWSER=1 $(PY) -m pytest

demo: setup
	$(VENV)/bin/seatwarden demo

bench: setup
	$(PY) -m bench

soak: setup
	HYPOTHESIS_PROFILE=soak $(PY) -m pytest

# Known vulnerabilities in the pinned requirements, from PyPI's advisory data (pip-audit's
# default service). pip-audit lives in a venv of its own, so its dependency tree stays out of
# the app's. --strict fails when a package cannot be audited at all: without it, a machine
# that cannot reach the advisory data reports "No known vulnerabilities found".
AUDIT_VENV := .venv-audit
PIP_AUDIT_VERSION := 2.10.1

audit-deps:
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION)
	$(AUDIT_VENV)/bin/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

clean:
	rm -rf $(VENV) $(AUDIT_VENV) node_modules
