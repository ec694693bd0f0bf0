# Fangorn Sentinel: developer and CI entry points (`make help`).
# Everything is installed into this checkout (.venv/, .tools/) by scripts/bootstrap.sh,
# which is a fast no-op when nothing changed; scripts/env.sh sets PATH and Reflex env.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# `make run PORT=8080 HOST=127.0.0.1`; unset means SENTINEL_HOST/SENTINEL_PORT or 0.0.0.0:3000.
HOST ?=
PORT ?=
SERVER_ENV := $(if $(HOST),SENTINEL_HOST=$(HOST)) $(if $(PORT),SENTINEL_PORT=$(PORT))
PYTEST_ARGS ?=
ENV := source scripts/env.sh &&

.PHONY: help install install-dev run demo test lint test-fast bench clean distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## Install runtime dependencies (uv, .venv, bun)
	@bash scripts/bootstrap.sh

install-dev: ## Install runtime + dev dependencies and chromium
	@bash scripts/bootstrap.sh --dev --browser

run: install ## Run the product on http://localhost:3000 (SQLite + local Ray by default)
	@$(ENV) exec env $(SERVER_ENV) sentinel up

demo: install ## Load demo data, then run
	@$(ENV) env $(SERVER_ENV) sentinel demo
	@$(MAKE) --no-print-directory run

test: install-dev ## ruff, mypy, then pytest (all backends, browser tests)
	@bash scripts/test.sh $(PYTEST_ARGS)

lint: ## ruff and mypy
	@bash scripts/bootstrap.sh --dev
	@$(ENV) ruff check && mypy

test-fast: install-dev ## pytest only, SQLite only
	@$(ENV) SENTINEL_TEST_BACKENDS=sqlite pytest $(PYTEST_ARGS)

bench: ## Run every tests/perf/bench_*.py (one JSON document each on stdout)
	@bash scripts/bootstrap.sh --dev
	@bash scripts/bench.sh

clean: ## Remove build output, caches and test artifacts (keeps .venv, .tools, data/)
	rm -rf .web .states test-artifacts .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.venv -prune -o -path ./.tools -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## Also remove .venv and .tools
	rm -rf .venv .tools
