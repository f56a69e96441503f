# `make demo` and `make test` create or refresh .venv themselves; both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test demo clean

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

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m dapt_plugin.demo

clean:
	rm -rf $(VENV)
