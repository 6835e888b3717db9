# One command each: `make verify` (the main job) and `make test` (the test suite).
# Both create .venv with the project and its extras on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest-xdist workers for the test targets: one per core (tests/conftest.py gives each worker its share of the
# BLAS threads); WORKERS=0 runs in one process
WORKERS ?= auto
# The versions CI last passed with (a pip constraints file); CONSTRAINTS= installs the newest releases instead
CONSTRAINTS ?= constraints.txt
LATEST ?= .venv-latest

.PHONY: setup verify verify-quick test test-latest test-slow constraints bench notebooks docs clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS),) -e '.[test,notebooks]'
	touch $(STAMP)

setup: $(STAMP)

# the claims in one worker process per core (each with its share of the BLAS threads); JOBS=1 runs them serially
JOBS ?= $(shell nproc 2>/dev/null || echo 1)

verify: $(STAMP)
	$(BIN)/solvable verify -j $(JOBS) --report report

verify-quick: $(STAMP)
	$(BIN)/solvable verify -j $(JOBS) --quick --report report-quick

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist worksteal

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(WORKERS) --dist worksteal

# The default suite against the newest releases of every dependency (a second environment, .venv-latest): drift in a
# dependency shows at the next change, not in a user's fresh clone. .ci/drift.py resolves the newest releases first
# (nothing installed); when they are exactly the versions of constraints.txt, `make test` has already run on them
# and the suite is not run twice.
test-latest: $(STAMP)
	@$(BIN)/python .ci/drift.py constraints.txt '.[test,notebooks]' || $(MAKE) test VENV=$(LATEST) CONSTRAINTS=

# The documentation site (Sphinx, warnings are errors): the guide (docs/guide/), the API reference from the
# docstrings, the claims catalogue from the registry (with the measured columns of report/results.json when
# `make verify` has run) and the gallery of every paper figure, drawn by its module now (SOLVABLE_GALLERY=full for
# the papers' sizes). Open docs/_build/html/index.html.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS),) -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(BIN)/sphinx-build -W --keep-going -q -j auto -b html docs docs/_build/html

# Pin what the current environment holds (after a green run): the file make setup installs from
constraints: $(STAMP)
	{ sed -n '1,/^[^#]/p' constraints.txt | grep '^#'; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^torch' -e '^solvable' -e ' @ '; } > constraints.new
	mv constraints.new constraints.txt

# JupyterLab on notebooks/, where the py:percent notebooks open as notebooks on a double click: jupytext's
# viewer is the default for Python files in .jupyter-lab-settings/, copied so that changes stay local.
LAB_SETTINGS := $(VENV)/lab-settings
ROOT_FLAG    := $(if $(filter 0,$(shell id -u)),--allow-root,)
notebooks: $(STAMP)
	mkdir -p $(LAB_SETTINGS) && cp -rn .jupyter-lab-settings/. $(LAB_SETTINGS)/
	JUPYTERLAB_SETTINGS_DIR=$(LAB_SETTINGS) $(BIN)/jupyter lab $(ROOT_FLAG) --notebook-dir=notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/diagonal_flow.py
	$(BIN)/python benchmarks/matrix_sensing_gd.py
	$(BIN)/python benchmarks/reduced_coordinates.py
	$(BIN)/python benchmarks/teacher_student.py

clean:
	rm -rf $(VENV) $(LATEST) report report-quick figures_out .pytest_cache .hypothesis *.egg-info docs/_build docs/api/generated docs/catalogue docs/gallery
