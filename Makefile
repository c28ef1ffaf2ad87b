# The two commands a newcomer needs (each installs whatever is missing first):
#   make demo   - train and evaluate Mask R-CNN and DeepLabV3 + GhostNetV2 on a generated
#                 dataset, on CPU, and draw their pictures
#   make test   - run the whole test suite
PYTHON := .venv/bin/python

.PHONY: install install-tests demo test test-cpus mutants

install:
	bash tools/install.sh

install-tests:
	bash tools/install.sh --tests

demo: install
	$(PYTHON) tools/run_demo.py

test: install-tests
	$(PYTHON) -m pytest -q tests

# The numerically sensitive tests (marker numerics) under every CPU kernel set
# (ATEN_CPU_CAPABILITY default, avx2, avx512 where there is one, native) x 1 and 2
# threads: a table; fails if any combination fails.
test-cpus: install-tests
	$(PYTHON) tools/dev/test_cpus.py

# Mutation check (not part of CI): break the model/checkpoint code in small ways, one
# at a time on a temporary copy of the repository, and check that a test fails for each.
mutants: install-tests
	$(PYTHON) tools/dev/mutants.py
