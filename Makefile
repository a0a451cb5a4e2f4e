# AIDoc chain. `make demo` runs the marketplace flow on a local chain; `make test` runs every check.
# Both install what they need first (idempotent): a Python venv, the npm toolchain, the compiler.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The virtualenv lives outside the project tree: Brownie's test runner hashes every imported module
# found under the project folder, and chokes on the compiled (.so) modules of a venv inside it.
# One venv per checkout path; `eval "$$(make -s env)"` puts it and the toolchain on a shell's PATH.
VENV ?= $(HOME)/.cache/aidoc-chain/venv-$(shell printf %s "$(CURDIR)" | sha1sum | cut -c1-12)
BIN := $(VENV)/bin
SOLC_VERSION := 0.8.37
SOLC_DIR := $(CURDIR)/.solcx

# The npm binaries (anvil, ganache-cli) must be on PATH by name for Brownie; py-solc-x finds the
# compiler in SOLCX_BINARY_PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(SOLC_DIR)
export PYTHONDONTWRITEBYTECODE := 1
# Brownie 1.22 warns about its own deprecated snapshot API on every call; nothing to act on.
export PYTHONWARNINGS := ignore::FutureWarning

BROWNIE := $(BIN)/brownie
# `brownie run` breaks when the checkout path has a dot in a folder name; see tools/run_script.py.
RUN_SCRIPT := $(BIN)/python tools/run_script.py
# Brownie 1.22 calls its own deprecated snapshot API on every isolated test.
PYTEST_WARNINGS := -W ignore::FutureWarning -W ignore::DeprecationWarning

.PHONY: help install env compile lint test test-contracts smoke-ganache demo fuzz gas clean

help:
	@echo "make demo   - start anvil, deploy the marketplace, script a marketplace flow, stop anvil"
	@echo "make test   - slither, the Brownie contract suite, and a Ganache deployment smoke test"
	@echo "make fuzz   - the stateful escrow/consent property test with 10,000 steps"
	@echo "make gas    - gas per marketplace operation (reports/gas.json, table for BENCHMARKS.md)"
	@echo "make clean  - remove build outputs (keeps the installed toolchain)"

# ---------------------------------------------------------------- installation

$(VENV)/.stamp: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SOLC_DIR)/solc-v$(SOLC_VERSION): node_modules/.stamp tools/solc/solc
	mkdir -p $(SOLC_DIR)
	ln -sfn ../tools/solc/solc $@
	$@ --version | grep -q 'Version: $(SOLC_VERSION)+commit'
	touch -h $@

install: $(VENV)/.stamp node_modules/.stamp $(SOLC_DIR)/solc-v$(SOLC_VERSION)

# Shell setup for running brownie by hand: eval "$$(make -s env)"
env:
	@echo 'export PATH="$(CURDIR)/node_modules/.bin:$(BIN):$$PATH"'
	@echo 'export SOLCX_BINARY_PATH="$(SOLC_DIR)"'

compile: install
	$(BROWNIE) compile

# ---------------------------------------------------------------- checks

lint: install
	$(BIN)/ruff check aidoc scripts tests tools
	$(BIN)/python tools/run_slither.py

test-contracts: install
	$(BROWNIE) test $(PYTEST_WARNINGS) $(TEST_ARGS)

smoke-ganache: install
	$(RUN_SCRIPT) scripts/marketplace.py --network ganache-cli

test: lint test-contracts smoke-ganache

# The stateful escrow and consent machine with 100 x 100 = 10,000 steps (make test runs 20 x 30).
fuzz: install
	AIDOC_STATEFUL_EXAMPLES=$${AIDOC_STATEFUL_EXAMPLES:-100} AIDOC_STATEFUL_STEPS=$${AIDOC_STATEFUL_STEPS:-100} \
		$(BROWNIE) test tests/test_stateful_market.py $(PYTEST_WARNINGS)

# Steady-state gas per operation (reports/gas.json), then Brownie's gas profile of the whole suite.
gas: install
	$(RUN_SCRIPT) scripts/gas_report.py
	mkdir -p reports
	$(BROWNIE) test --gas $(PYTEST_WARNINGS) | tee reports/gas-profile.txt

# ---------------------------------------------------------------- demo

# Brownie's `development` network attaches to the anvil started here (it launches its own only when
# nothing listens on 8545), so deploy and marketplace share one chain; the trap stops anvil.
demo: install
	@mkdir -p .run
	@if (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null; then \
		echo "Port 8545 is taken: stop the process listening there and run make demo again."; exit 1; fi
	anvil --port 8545 --block-base-fee-per-gas 0 --silent > .run/anvil.log 2>&1 & echo $$! > .run/anvil.pid; \
	trap 'kill $$(cat .run/anvil.pid) 2>/dev/null; rm -f .run/anvil.pid' EXIT; \
	for _ in $$(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null && break; sleep 0.1; done; \
	$(RUN_SCRIPT) scripts/deploy.py --network development; \
	$(RUN_SCRIPT) scripts/marketplace.py --network development

clean:
	rm -rf build reports .run .hypothesis
