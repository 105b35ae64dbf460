# The two commands of the README: `make demo` (the main job on the built-in default experiment)
# and `make test` (the whole test suite). Both install the system libraries they need first.

SWIFT ?= swift
DEMO_OUT ?= results/demo

.PHONY: setup build demo test test-long bench clean figures figures-test slurm-test

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build -c release --product plateau

# Saad–Solla committee (erf, K = M = 2, η = 0.5) at d = 1000, 16 seeds, against its ODE.
demo: build
	.build/release/plateau compare --dimension 1000 --seeds 16 --out $(DEMO_OUT)

# The default test run (well under 15 minutes on 2 cores). Optimised build: the statistical
# theory-vs-simulation tests run thousands of SGD steps per seed. PLATEAU_LONG_TESTS=1 adds the
# longer statistical checks.
TEST_FLAGS = -c release -Xswiftc -enable-testing
FIGURES_VENV ?= .venv-figures

test: setup
	$(SWIFT) test $(TEST_FLAGS)

# The long run includes the notebooks' test (FigureTests, about 2 minutes), so it builds the figures
# environment first.
test-long: setup $(FIGURES_VENV)/.installed
	PLATEAU_LONG_TESTS=1 PLATEAU_FIGURE_TESTS=1 PLATEAU_PYTHON=$(abspath $(FIGURES_VENV))/bin/python $(SWIFT) test $(TEST_FLAGS)

# Figures: a pinned Python environment (scripts/figures/requirements.txt) executes every
# notebooks-data/*/plot.ipynb in its folder, writing its PNGs beside the CSVs.

$(FIGURES_VENV)/.installed: scripts/figures/requirements.txt
	python3 -m venv $(FIGURES_VENV)
	$(FIGURES_VENV)/bin/pip install -q -r scripts/figures/requirements.txt
	touch $@

figures: $(FIGURES_VENV)/.installed
	$(FIGURES_VENV)/bin/python scripts/figures/run_notebooks.py notebooks-data/*/

# Each notebook on the output of `plateau reproduce NAME --quick` in a temporary folder.
figures-test: setup $(FIGURES_VENV)/.installed
	PLATEAU_FIGURE_TESTS=1 PLATEAU_PYTHON=$(abspath $(FIGURES_VENV))/bin/python $(SWIFT) test $(TEST_FLAGS) --filter FigureTests

# The sweep's Slurm test against a real single-node Slurm started (and stopped) by scripts/slurm-local.sh.
slurm-test: setup
	bash scripts/slurm-local.sh start
	SLURM_CONF=$${PLATEAU_SLURM_DIR:-/tmp/plateau-slurm}/slurm.conf PLATEAU_SLURM_TESTS=1 $(SWIFT) test $(TEST_FLAGS) --filter SweepTests; \
	  status=$$?; bash scripts/slurm-local.sh stop; exit $$status

bench: setup
	cd Benchmarks && $(SWIFT) package --scratch-path ../.build-bench benchmark

clean:
	rm -rf .build results
