# Set-up and main commands. `make demo` and `make test` install first.
#
#   make install   create .venv and install the package, its test and cache
#                  extras (Apache Beam, for seqio's offline cache job) and
#                  the promptsource templates (used by the P3 tasks)
#   make demo      the main job: train a tiny mT5 on KoBEST, score held-out
#                  tasks in Korean and English templates (gin/demo.gin)
#   make test      the test suite (pytest)
#   make bench     our trainer against reference implementations, measured in
#                  one run (~10-20 min on 2 cores); prints a table and appends
#                  a dated entry to bench/RESULTS.md (BENCH_ARGS=--quick: fewer
#                  steps, for trying it out)
#
# KORANI_DATA_DIR: the raw source files; defaults to ../shared/data/raw where
# it exists, else the demo uses ~/.cache/korani/data and downloads the KoBEST
# files it needs there on its first run.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KORANI_DATA_DIR ?= $(wildcard $(abspath ../shared/data/raw))
DEMO_OUTPUT ?= demo_output
PYTEST_ARGS ?=
# Test worker processes (pytest-xdist); each takes whole test files, in
# order, and its own session fixtures. 0: one process.
TEST_WORKERS ?= 2
BENCH_ARGS ?=

export KORANI_DATA_DIR

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[test,cache]"
	$(BIN)/python -m pip install --no-deps --ignore-requires-python promptsource==0.2.3
	touch $@

demo: install
	$(BIN)/korani demo --output $(DEMO_OUTPUT)

test: install
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_OUTPUT) .pytest_cache
