# One command each: `make verify` (the main job) and `make test` (the test suite).
# Both create .venv with the project and its extras on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup verify verify-quick test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks]'
	touch $(STAMP)

setup: $(STAMP)

verify: $(STAMP)
	$(BIN)/solvable verify --report report --json report/results.json

verify-quick: $(STAMP)
	$(BIN)/solvable verify --quick --report report

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/diagonal_flow.py

clean:
	rm -rf $(VENV) report figures_out .pytest_cache .hypothesis *.egg-info
