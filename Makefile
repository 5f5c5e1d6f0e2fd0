# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean schema migrations constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every dependency, so a release elsewhere cannot turn
# a green checkout red; `make constraints` refreshes it from the environment.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
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

# Re-pin every dependency to what is installed now (after a deliberate upgrade).
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
