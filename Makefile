# FileDock: `make run` serves on 127.0.0.1:8000 with state in ./data; `make test` runs everything.
# Both create the virtual environments they need; `make install` only creates .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The front-door tests run a second time under the newest openai 2.x SDK from this venv.
OPENAI2_VENV := .venv-openai2
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: install run test lint test-main test-openai2 clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("FileDock needs Python 3.11 or newer, found " + sys.version.split()[0] if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e '.[test]'
	@touch $@

$(OPENAI2_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OPENAI2_VENV)
	$(OPENAI2_VENV)/bin/pip install $(PIP_QUIET) 'openai>=2.54,<3' 'pytest>=8,<10' pytest-asyncio 'httpx>=0.27,<1'
	@touch $@

run: install
	$(BIN)/filedock serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint test-main test-openai2

test-main: install
	$(BIN)/pytest

test-openai2: install $(OPENAI2_VENV)/.installed
	$(OPENAI2_VENV)/bin/python -c 'import openai; assert openai.__version__.startswith("2."), openai.__version__'
	$(OPENAI2_VENV)/bin/pytest tests/frontdoor

clean:
	rm -rf $(VENV) $(OPENAI2_VENV) .mypy_cache .ruff_cache .pytest_cache
