# The two commands a newcomer needs (each installs whatever is missing first):
#   make demo   - train GhostNetV2 detectors/segmenters on a generated dataset, on CPU
#   make test   - run the whole test suite
PYTHON := .venv/bin/python

.PHONY: install install-tests demo test

install:
	bash tools/install.sh

install-tests:
	bash tools/install.sh --tests

demo: install
	$(PYTHON) tools/misc/print_feature_shapes.py

test: install-tests
	$(PYTHON) -m pytest -q tests
