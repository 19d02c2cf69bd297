# Preflab — the two commands a newcomer needs:
#   make run    set everything up, seed the demo, start web + worker on the embedded default
#   make test   set everything up and run the whole suite (lint, types, frontend, pytest)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# Every Python package but torch, pinned with hashes (`make lock` refreshes it). torch is
# pinned in requirements-torch.txt and installed on its own, first: its wheel differs by
# machine (a CPU build here, CUDA builds elsewhere), so it cannot carry one set of hashes.
LOCK := requirements.lock
# the Docker image's lock: the same pins without the dev extra
RUNTIME_LOCK := requirements-runtime.lock
TORCH := requirements-torch.txt
LOCK_VENV ?= /tmp/preflab-lock-venv
PIP_TOOLS := pip-tools==7.6.2
COMPILE := --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
  --unsafe-package torch

.PHONY: run test setup python frontend lint typecheck pytest clean worker web lock

setup: python frontend

python: $(STAMP)

$(STAMP): $(LOCK) $(TORCH) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first: 2.13.0 is a CPU build; anything else pulls gigabytes of CUDA
	$(PIP) install --quiet -r $(TORCH)
	# then exactly the locked versions, each checked against its hash
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	# the project itself: nothing more to resolve, built with the locked setuptools
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	# a dependency added to pyproject.toml but not yet locked fails here: run `make lock`
	$(PIP) check
	touch $(STAMP)

# Resolve pyproject.toml (with the dev extra) into $(LOCK), with hashes, for the torch of
# $(TORCH), and its runtime part into $(RUNTIME_LOCK); pins already in $(LOCK) are kept
# unless `make lock UPGRADE=--upgrade` (or UPGRADE="--upgrade-package NAME"). pip-tools
# runs from a throwaway virtualenv, never from $(VENV).
lock: $(TORCH) pyproject.toml
	@test -x $(LOCK_VENV)/bin/pip-compile || \
	  ( $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet '$(PIP_TOOLS)' )
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(COMPILE) \
	  --extra dev --constraint $(TORCH) --output-file $(LOCK) $(UPGRADE) pyproject.toml
	# the image's runtime subset (no dev extra), at the same versions
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(COMPILE) \
	  --constraint $(TORCH) --constraint $(LOCK) --output-file $(RUNTIME_LOCK) pyproject.toml

frontend: frontend/node_modules/.package-lock.json frontend/dist/index.html

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(shell find frontend/src frontend/index.html frontend/vite.config.ts -type f 2>/dev/null)
	cd frontend && npm run build

run: setup
	./scripts/run.sh

test: setup
	./scripts/test.sh

lint: python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: python
	DJANGO_DEBUG=1 $(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist var
