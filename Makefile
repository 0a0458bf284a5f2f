# The two commands that matter on a fresh machine: `make dev` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: dev test lint coverage-doc bench clean

$(BIN)/sesame: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

dev: $(BIN)/sesame ## set up and run Sesame on the embedded SQLite default
	$(BIN)/sesame dev

test: $(BIN)/sesame ## set up and run the whole test suite (SQLite and PostgreSQL)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n auto -q

lint: $(BIN)/sesame
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

coverage-doc: $(BIN)/sesame ## regenerate docs/coverage.md
	$(BIN)/python -m sesame.awsapi.coverage > docs/coverage.md

bench: $(BIN)/sesame ## API benchmark (see bench/api.py --help)
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .sesame
