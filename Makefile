# `make demo` and `make test` create or refresh .venv themselves; both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test test-fast lint format demo clean

install: $(STAMP)

# Re-runs only when the pins or the package metadata change.
$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	# allennlp 2.10.1 declares torch<1.13 and transformers<4.21 (no Python 3.11 builds):
	# install it without its stale pins; requirements.txt supplies what it imports.
	$(PIP) --no-deps allennlp==2.10.1
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole suite on both cores, after the formatting and lint check (ruff.toml).
test: install lint
	$(PY) -m pytest -q -n 2 --dist worksteal tests

# The tests that start no process of their own (no `allennlp` process, no worker): under a minute.
test-fast: install
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not process" tests

lint: install
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: install
	$(PY) -m dapt_plugin.demo

clean:
	rm -rf $(VENV)
