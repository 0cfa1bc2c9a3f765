# netgen: `make build` sets everything up and compiles the example estate; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NCA_VENV := .nca-venv

.PHONY: build test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# network-config-analyzer pins old dependencies, so it lives in a virtual environment of its own.
$(NCA_VENV)/.installed:
	$(PYTHON) -m venv $(NCA_VENV)
	$(NCA_VENV)/bin/pip install -q network-config-analyzer
	touch $@

build: $(VENV)/.installed
	$(BIN)/netgen build

test: $(VENV)/.test-installed $(NCA_VENV)/.installed
	$(BIN)/netgen build --check
	NETGEN_NCA=$(CURDIR)/$(NCA_VENV)/bin/nca $(BIN)/pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check netgen tests

clean:
	rm -rf $(VENV) $(NCA_VENV) .pytest_cache .hypothesis .ruff_cache
