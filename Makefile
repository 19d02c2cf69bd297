# Preflab — the two commands a newcomer needs:
#   make run    set everything up, seed the demo, start web + worker on the embedded default
#   make test   set everything up and run the whole suite (lint, types, frontend, pytest)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test setup python frontend lint typecheck pytest clean worker web

setup: python frontend

python: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first: 2.13.0 is a CPU build; anything else pulls gigabytes of CUDA
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

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
