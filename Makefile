# make demo: simulate a small cohort and process it, offline.  make test: the whole test suite (CI);
# make test-fast: everything not marked slow (demo, examples, validation, Dask, browser), for every change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast examples bench validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trdnet demo trdnet_demo

# one pytest-xdist worker per core; a test file stays in one worker, so its module fixtures are built once
# (session fixtures once per run: tests/conftest.py build_once)
TEST_WORKERS ?= 2
# Bytecode caches (__pycache__, ignored by git) are written even where PYTHONDONTWRITEBYTECODE is set: a test run
# imports trdnet in many processes and pytest rewrites every test module's asserts, seconds per process each time.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile

examples: $(STAMP)
	$(BIN)/python examples/run_all.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# SIMULATED validation on the realistic simulator: 16 participants x 2 sessions, 8/16/30 min (validation/README.md)
validate: $(STAMP)
	nice $(BIN)/python validation/run_validation.py --set report --resolution 4 --participants 16 \
		--variants default cluster_size_8mm cluster_mean_4mm peak hierarchical

clean:
	rm -rf trdnet_demo examples/output
