# The two commands a newcomer needs: `make demo` (the main job) and `make test`.
# Both install missing requirements first; when everything is installed that check
# takes a fraction of a second.

PYTHON ?= python
PYTEST_ARGS ?=

.PHONY: install test test-slow test-all demo bench gpu-check help

help:
	@echo "make demo      install if needed, then run the style-shift benchmark (baseline vs BlindNet)"
	@echo "make test      install if needed, then run the test suite (CPU, ~minutes)"
	@echo "make test-slow only the slow end-to-end tests (torchrun, official scripts)"
	@echo "make test-all  the test suite including slow end-to-end tests"
	@echo "make bench     run the benchmarks in bench/ and print their tables"
	@echo "make gpu-check the one-shot GPU check (bench/gpu_check.py; installs nothing)"

install:
	$(PYTHON) tools/ensure_requirements.py requirements.txt --no-deps requirements-nodeps.txt

test: install
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-slow: install
	$(PYTHON) -m pytest -q -m slow $(PYTEST_ARGS)

test-all: install
	$(PYTHON) -m pytest -q -m "slow or not slow" $(PYTEST_ARGS)

# DEMO_ARGS passes flags to demo.py, e.g. make demo DEMO_ARGS="--iters 1000 --device cuda"
demo: install
	$(PYTHON) demo.py $(DEMO_ARGS)

bench: install
	$(PYTHON) bench/train_step.py --official-style
	$(PYTHON) bench/data_pipeline.py
	$(PYTHON) bench/demo_seeds.py

# The one-shot GPU check (docs/GPU.md). No install step: the GPU machine reaches no package
# registry; tools/gpu_wheels.sh prepares what it lacks. GPU_CHECK_ARGS="--device cpu --quick"
# runs the same sections on the CPU at tiny sizes.
GPU_CHECK_OUT ?= logs/gpu_check
GPU_CHECK_ARGS ?=
gpu-check:
	$(PYTHON) bench/gpu_check.py --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)
