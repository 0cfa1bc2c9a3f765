# netgen: `make build` sets everything up and compiles the example estate; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NCA_VENV := .nca-venv
# The day the example estate's generated/ is built as of (tests/conftest.py EXAMPLE_AS_OF): its temporary grant
# expires 2027-09-30, after which a build as of that day fails (NG111), as it should in a team's CI.
EXAMPLE_AS_OF := 2026-11-26

.PHONY: build test lint bench bench-deploy clean graphviz dist

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

test: $(VENV)/.test-installed $(NCA_VENV)/.installed graphviz
	$(BIN)/netgen build --check --as-of $(EXAMPLE_AS_OF)
	NETGEN_NCA=$(CURDIR)/$(NCA_VENV)/bin/nca $(BIN)/pytest -q -p no:cacheprovider

# Graphviz, for the test that feeds `netgen graph --format dot` to `dot` (it must pass when CI is set; elsewhere
# it is skipped without Graphviz). Installed with apt-get only when `dot` is missing and we are root.
graphviz:
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } \
		|| echo "graphviz: 'dot' is not installed; the dot test is skipped (and fails when CI is set)"

# Synthetic estates of 1k, 10k and 100k grants, each again through transit gateways; prints the tables
# docs/performance.md holds (about 4 minutes).
bench: $(VENV)/.installed
	$(BIN)/python -m netgen.bench.run --sizes 1000,10000,100000 --transit-gateway 1000,10000,100000 --runs 3

# netgen deploy against moto (a server in a process of its own on 127.0.0.1, hence the test extras) on the 1k
# and 10k synthetic estates: from scratch, nothing changed, one grant changed; then from scratch at 10k again with
# CloudFormation's time modelled (each request that starts a stack's work waits 1 s), at concurrency 1 and the
# default. Prints the table docs/performance.md holds. Medians of 3 runs (about 20 minutes).
bench-deploy: $(VENV)/.test-installed
	$(BIN)/python -m netgen.bench.deploy --sizes 1000,10000 --runs 3

# The wheel and sdist of the netgen-access distribution, into dist/ (`python -m build`; docs/install.md).
dist: $(VENV)/.test-installed
	$(BIN)/python -m build --outdir dist

lint: $(VENV)/.test-installed
	$(BIN)/ruff check netgen tests

clean:
	rm -rf $(VENV) $(NCA_VENV) .pytest_cache .hypothesis .ruff_cache dist
