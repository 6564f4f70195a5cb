# litestar-queues developer commands. `make` or `make help` lists them. Python tools always run through `uv run`.
SHELL := bash
.DEFAULT_GOAL := help
.PHONY: help sync lint fmt type test chaos servers-up servers-down servers-status build ci

ARGS ?=

help: ## Show this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

sync: ## Install the whole workspace from the lock (uv sync --all-packages --locked)
	uv sync --all-packages --locked

lint: ## ruff check + ruff format --check
	uv run ruff check .
	uv run ruff format --check .

fmt: ## Apply ruff fixes and formatting
	uv run ruff check --fix .
	uv run ruff format .

type: ## mypy strict on every package's src/ (scripts/typecheck.sh: uv run mypy with all src dirs as bases)
	bash scripts/typecheck.sh $(ARGS)

test: ## All tests with real servers (bash scripts/test.sh; pass pytest args with ARGS="-k cron -x")
	bash scripts/test.sh $(ARGS)

chaos: ## Long chaos run on every backend: 10,000 jobs, SIGKILLs every 2-3 s, a server restart (ARGS="postgres --jobs 2000")
	bash scripts/chaos.sh $(ARGS)

servers-up: ## Start Redis, Valkey, PostgreSQL, MariaDB and keep them (exports: scripts/servers.sh env)
	bash scripts/servers.sh up $(ARGS)

servers-down: ## Stop the test servers
	bash scripts/servers.sh down $(ARGS)

servers-status: ## Show which test servers run
	bash scripts/servers.sh status

build: ## Build every wheel and sdist into dist/ and check the wheels
	rm -rf dist
	uv build --all-packages -o dist
	uv run python scripts/check_wheels.py dist

ci: ## The whole CI run, as on GitHub (bash .ci/run)
	bash .ci/run
