# make setup: create .venv with the pinned requirements (once) and build the fast CPU conv op.
# make ops:   (re)build the fast CPU op; STRICT=1 (or CI=true) makes a failed build an error.
# make test:  lint, then the whole test suite (tests/unit, tests/integration, tests/e2e).
# make test-fast: lint, then all but the slow end-to-end tests (-m "not slow"), for iterating.
# make demo: the whole workflow on a generated dataset.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast lint demo ops clean

setup: $(STAMP) ops

# requirements-ops.txt: the oneDNN headers only (--no-deps: the op links MindSpore's oneDNN, not the
# 90 MB runtime wheel they would pull in)
$(STAMP): requirements.txt requirements-ops.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --disable-pip-version-check --no-deps -r requirements-ops.txt
	$(VENV)/bin/pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# A failed build: for users one warning (native convolutions, and how much slower), exit 0;
# with STRICT=1 or CI=true an error with the compiler's first error line, exit 1.
STRICT ?=
ops: $(STAMP)
	@STRICT=$(STRICT) $(PY) -m src.ops.build

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

test-fast: setup lint
	$(PY) -m pytest -m "not slow"

demo: setup
	bash scripts/run_demo.sh

clean:
	rm -rf demo_output .pytest_cache build
