# make setup: create .venv with the pinned requirements (once) and build the fast CPU conv op.
# make test:  lint, then the whole test suite (tests/unit, tests/integration, tests/e2e).
# make test-fast: lint, then all but the slow end-to-end tests (-m "not slow"), for iterating.
# make demo: the whole workflow on a generated dataset.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast lint demo ops clean

setup: $(STAMP) ops

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# prints one warning and succeeds when the op cannot be built: the suite then uses native convolutions
ops: $(STAMP)
	@$(PY) -m src.ops.build

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
