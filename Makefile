# The two commands of the README: `make demo` (the main job on the built-in default experiment)
# and `make test` (the whole test suite). Both install the system libraries they need first.

SWIFT ?= swift
DEMO_OUT ?= results/demo

.PHONY: setup build demo test test-long bench clean

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

test: setup
	$(SWIFT) test $(TEST_FLAGS)

test-long: setup
	PLATEAU_LONG_TESTS=1 $(SWIFT) test $(TEST_FLAGS)

bench: setup
	cd Benchmarks && $(SWIFT) package --scratch-path ../.build-bench benchmark

clean:
	rm -rf .build results
