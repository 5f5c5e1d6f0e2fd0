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

# The stock GraphQL clients the tests drive (tests/clients, tests/conformance),
# exactly as package-lock.json pins them; without Node those tests are skipped.
NODE_MODULES := client-examples/stock/node_modules/.package-lock.json
$(NODE_MODULES): client-examples/stock/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd client-examples/stock && npm ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is not installed: the stock-client tests will be skipped"; \
	fi

run: $(STAMP)
	$(BIN)/lockbox demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# SQLite and the in-process broker always; PostgreSQL (+ Redis) when configured.
# The two stacks share nothing (their own databases, brokers and temporary
# folders), so they run side by side: most of a test's time is spent waiting
# on servers and sockets, not computing. The SQLite log is printed after.
unit: $(STAMP) $(NODE_MODULES)
	@if [ -z "$$LOCKBOX_TEST_POSTGRES_URL" ]; then \
		LOCKBOX_TEST_STACK=sqlite $(BIN)/pytest; \
	else \
		log=$$(mktemp); \
		LOCKBOX_TEST_STACK=sqlite $(BIN)/pytest --basetemp="$$log.sqlite" >"$$log" 2>&1 & sqlite=$$!; \
		echo "--- PostgreSQL$${LOCKBOX_TEST_REDIS_URL:+ and Redis} (SQLite runs beside it)"; \
		LOCKBOX_TEST_STACK=postgres $(BIN)/pytest --basetemp="$$log.postgres"; postgres=$$?; \
		wait $$sqlite; sqlite=$$?; \
		echo "--- SQLite and the in-process broker"; cat "$$log"; \
		rm -rf "$$log" "$$log.sqlite" "$$log.postgres"; \
		[ $$sqlite -eq 0 ] && [ $$postgres -eq 0 ]; \
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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache client-examples/stock/node_modules

# Re-pin every dependency to what is installed now (after a deliberate upgrade).
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
