# Seatwarden: `make demo` and `make test` work from a fresh clone on a fresh machine.
# They create .venv, install the pinned requirements and Azurite (npm, into node_modules/).
# The tests start Azurite on loopback themselves and always stop it (tests/conftest.py).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed

.PHONY: setup test lint demo bench soak clean

setup: $(PY_OK) $(NODE_OK)

$(PY_OK): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_OK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PY_OK)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: setup lint
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/seatwarden demo

bench: setup
	$(PY) -m bench

soak: setup
	HYPOTHESIS_PROFILE=soak $(PY) -m pytest

clean:
	rm -rf $(VENV) node_modules
