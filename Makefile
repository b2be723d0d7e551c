# samt124 — one task runner. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: dev
dev: $(STAMP) ## create the virtualenv with samt124 and its development tools

.PHONY: system
system: ## install the system packages the tests use (ClickHouse server, docker-compose, chromium) when root
	@bash scripts/system-deps.sh

.PHONY: demo
demo: $(STAMP) system ## run the whole pipeline on local defaults, print the reports, write reports/demo.html
	$(BIN)/samt124 demo

.PHONY: lint
lint: $(STAMP) ## ruff (lint, format check), mypy strict, and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: $(STAMP) ## format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: unit
unit: $(STAMP) ## fast tests: pure logic, no broker
	$(BIN)/pytest tests/unit -q

.PHONY: integration
integration: $(STAMP) system ## tests against the real Kafka broker, ClickHouse server and chdb
	$(BIN)/pytest tests/integration -q

.PHONY: chaos
chaos: $(STAMP) system ## faults: kills of worker, sink and broker, a ClickHouse outage, intake fuzzing
	$(BIN)/pytest tests/chaos -q

.PHONY: test
test: $(STAMP) system lint ## install, lint (ruff, mypy, import contracts), then every test: unit, integration, chaos
	$(BIN)/pytest tests -q --durations=30

.PHONY: up
up: $(STAMP) ## start the local Kafka broker and ClickHouse server
	$(BIN)/samt124 local up

.PHONY: down
down: $(STAMP) ## stop them
	$(BIN)/samt124 local down

.PHONY: clean
clean: ## stop local services and remove local data (keeps the jar cache)
	-$(BIN)/samt124 local down
	rm -rf .samt124/kafka .samt124/clickhouse .samt124/chdb .samt124/test

.PHONY: holidays
holidays: $(STAMP) ## regenerate the official holidays file from the holidays package (review the diff)
	$(BIN)/samt124 calendar holidays --country IR --years $(or $(YEARS),1395-1420) > samt124/domain/data/holidays_ir.json.new
	mv samt124/domain/data/holidays_ir.json.new samt124/domain/data/holidays_ir.json
	git diff --stat -- samt124/domain/data/holidays_ir.json

.PHONY: bench
bench: $(STAMP) ## measure throughput, latency and recovery on private services (SCALE=small|full)
	$(BIN)/samt124 bench --scale $(or $(SCALE),small) --output benchmarks/RESULTS.md
