# The two commands a newcomer needs: `make run` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint clean

EXAMPLE := examples/interlock-example-connector

$(STAMP): pyproject.toml $(EXAMPLE)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# The out-of-tree connector example, which the tests run through a real app.
	$(BIN)/pip install --quiet --no-deps -e $(EXAMPLE)
	touch $(STAMP)

install: $(STAMP)

## Serve on http://127.0.0.1:8080 with SQLite at ./interlock.db
run: $(STAMP)
	$(BIN)/interlock serve

## Lint, type-check, check layering, then run every test on SQLite and PostgreSQL
test: $(STAMP)
	scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
