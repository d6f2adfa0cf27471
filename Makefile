# The documented way to do everything. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: help install run test test-unit test-integration test-contract test-deploy lint fmt typecheck \
        proto proto-check bench bench-ingest deploy-tools deploy-check clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install switchyard (editable) with dev tools

run: $(STAMP)  ## start the embedded stack (data plane :8080, control plane :8081, gRPC :50051)
	$(BIN)/switchyard up $(if $(CONFIG),--config $(CONFIG),)

test: $(STAMP)  ## the whole suite: unit, data plane, integration, contract, deploy checks
	$(PYTEST) tests

test-unit: $(STAMP)  ## fast domain tests, no servers
	$(PYTEST) tests/unit

test-integration: $(STAMP)  ## real processes against Postgres / Redis / NATS
	$(PYTEST) tests/integration

test-contract: $(STAMP)  ## official SDKs against the gateway
	$(PYTEST) tests/contract

test-deploy: $(STAMP)  ## compose / helm validation (needs `make deploy-tools`)
	$(PYTEST) tests/deploy

lint: $(STAMP)  ## ruff lint + format check, generated code current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/gen_proto.py --check

fmt: $(STAMP)  ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)  ## mypy
	$(BIN)/mypy libs services

proto: $(STAMP)  ## regenerate the committed gRPC code from proto/
	$(BIN)/python scripts/gen_proto.py

proto-check: $(STAMP)  ## fail if the committed gRPC code is stale
	$(BIN)/python scripts/gen_proto.py --check

bench: $(STAMP)  ## data-plane overhead vs calling the mock upstream directly
	$(BIN)/python bench/overhead/run.py

bench-ingest: $(STAMP)  ## usage events/s from JetStream into Postgres + VictoriaMetrics, lag and memory
	$(BIN)/python bench/ingest/run.py $(BENCH_ARGS)

deploy-tools: $(STAMP)  ## install helm, compose and the manifest validators
	bash scripts/install_deploy_tools.sh

deploy-check: deploy-tools  ## validate deploy/compose and deploy/helm with the real tools
	bash scripts/deploy_check.sh

clean:  ## remove the virtualenv, caches and local state
	rm -rf $(VENV) .switchyard .pytest_cache .ruff_cache .mypy_cache
