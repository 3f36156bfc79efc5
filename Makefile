# make setup: create .venv with the user's pinned requirements (requirements.txt, once) and build the fast CPU op.
# make demo:  the whole workflow on a generated dataset (needs only make setup's install).
# make test:  installs requirements-dev.txt too (pytest, ruff, benchmark references), then lint and the whole
#             test suite (tests/unit, tests/integration, tests/e2e).
# make test-fast: lint, then all but the slow end-to-end tests (-m "not slow"), for iterating.
# make dev:   only the dev install (e.g. to run single test files).
# make ops:   (re)build the fast CPU op; STRICT=1 (or CI=true) makes a failed build an error.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip install --disable-pip-version-check
STAMP  := $(VENV)/.installed
# A separate stamp for the dev install, so that `make demo` in a fresh clone installs no test tools.
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: setup dev test test-fast lint demo ops clean

setup: $(STAMP) ops

# requirements-ops.txt: the oneDNN headers only (--no-deps: the op links MindSpore's oneDNN, not the
# 90 MB runtime wheel they would pull in)
$(STAMP): requirements.txt requirements-ops.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -r requirements-ops.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $(DEV_STAMP)

# A failed build: for users one warning (native convolutions, and how much slower), exit 0;
# with STRICT=1 or CI=true an error with the compiler's first error line, exit 1.
STRICT ?=
ops: $(STAMP)
	@STRICT=$(STRICT) $(PY) -m src.ops.build

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

test-fast: setup lint
	$(PY) -m pytest -m "not slow"

demo: setup
	bash scripts/run_demo.sh

clean:
	rm -rf demo_output .pytest_cache build
