# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean schema migrations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lockbox demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# SQLite and the in-process broker always; PostgreSQL (+ Redis) when configured.
unit: $(STAMP)
	LOCKBOX_TEST_STACK=sqlite $(BIN)/pytest
	@if [ -n "$$LOCKBOX_TEST_POSTGRES_URL" ]; then \
		echo "--- again on PostgreSQL$${LOCKBOX_TEST_REDIS_URL:+ and Redis}"; \
		LOCKBOX_TEST_STACK=postgres $(BIN)/pytest; \
	fi

# Regenerate the committed SDL after changing the API.
schema: $(STAMP)
	$(BIN)/lockbox export-schema > schema/schema.graphql

# Write a migration after changing lockbox/store/models.py.
migrations: $(STAMP)
	cd server && ../$(BIN)/python -m tortoise -c lockbox.store.config.TORTOISE_ORM makemigrations

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
