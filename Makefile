# One command each: `make verify` (the main job) and `make test` (the test suite).
# Both create .venv with the project and its extras on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup verify verify-quick test test-slow bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks]'
	touch $(STAMP)

setup: $(STAMP)

verify: $(STAMP)
	$(BIN)/solvable verify --report report --json report/results.json

verify-quick: $(STAMP)
	$(BIN)/solvable verify --quick --report report-quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# JupyterLab on notebooks/, where the py:percent notebooks open as notebooks on a double click (jupytext's
# viewer, set as the default for Python files in a settings directory of this checkout only).
LAB_SETTINGS := $(VENV)/lab-settings
notebooks: $(STAMP)
	mkdir -p $(LAB_SETTINGS)/@jupyterlab/docmanager-extension
	printf '{"defaultViewers": {"python": "Jupytext Notebook"}}\n' \
		> $(LAB_SETTINGS)/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings
	JUPYTERLAB_SETTINGS_DIR=$(LAB_SETTINGS) $(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/diagonal_flow.py

clean:
	rm -rf $(VENV) report report-quick figures_out .pytest_cache .hypothesis *.egg-info
