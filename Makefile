# The two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := all,dev
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
BENCH  ?=
# Most tests wait on sockets and subprocesses, so the suite runs in more workers than cores.
TEST_WORKERS ?= 4

export GATEWAY_DATABASE_URL ?= sqlite:///gateway.db

.PHONY: run test unit lint bench services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $@

# The quickstart runs jobs as whoever runs it; a root service (systemd, containers) keeps the
# unprivileged default. See the README's Security section.
run: export GATEWAY_JOB_USER ?= $(shell id -un)
run: $(STAMP)
	$(BIN)/gateway apply -f examples/gateway.yaml
	@cat examples/next-steps.txt
	$(BIN)/gateway serve

services: $(STAMP)
	scripts/test-services.sh

test: $(STAMP) services
	. .run/services.env && $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

bench: $(STAMP) services
	. .run/services.env && $(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf .run gateway.db gateway.db-wal gateway.db-shm gateway.db.master-key .pytest_cache .mypy_cache .ruff_cache
