# The two commands that matter on a fresh machine: `make dev` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: dev test lint coverage-doc bench clean

# aiobotocore pins an older botocore than ours but works with it (tests/integration/test_clients.py): it is
# installed without its dependencies so that pip does not downgrade botocore.
$(BIN)/sesame: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps 'aiobotocore==3.10.0' 'aioitertools>=0.5.1'
	touch $@

# The JavaScript SES clients the client-flow tests run (needs Node.js and npm).
tests/clients/node_modules: tests/clients/package.json tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund --silent
	touch $@

dev: $(BIN)/sesame ## set up and run Sesame on the embedded SQLite default
	$(BIN)/sesame dev

test: $(BIN)/sesame tests/clients/node_modules ## set up and run the whole test suite (SQLite and PostgreSQL)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	@# Every test starts Sesame processes (servers, `sesame accounts ...`): with PYTHONDONTWRITEBYTECODE
	@# set, as on the CI machines, each would compile all of src/ again (0.7 s of CPU a process).
	$(BIN)/python -m compileall -q src
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
