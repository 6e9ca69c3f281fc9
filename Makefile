# Every target bootstraps what it needs: .venv from PyPI, node_modules from npm (lock file).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AUDIT_VENV := .venv-audit
# Slither impact at or above which `make audit` fails: high, medium, low, informational, optimization, none.
AUDIT_FAIL_ON ?= medium
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo lint test gas bench audit fuzz compile check-artifacts clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# A node_modules symlink (a git worktree sharing another checkout's install) is used as is, never
# reinstalled: `npm ci` would empty the shared directory under every other checkout.
node_modules/.installed: package.json package-lock.json
	@if [ -L node_modules ]; then \
	  test -f node_modules/solc/package.json || { echo "node_modules -> $$(readlink node_modules) has no solc: run npm ci there" >&2; exit 1; }; \
	else \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	fi

# Slither pins web3 < 8; the project uses web3 8: separate virtualenv, pinned in requirements-audit.txt.
$(AUDIT_VENV)/.installed: requirements-audit.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install -q -r requirements-audit.txt
	touch $@

deps: $(VENV)/.installed node_modules/.installed

demo: deps
	$(PY) scripts/demo_trade.py

# Style and type gates: ruff (rules in pyproject.toml), ruff format, mypy --strict on the package.
# All three always run; fails when any finds something.
lint: deps
	status=0; \
	$(VENV)/bin/ruff check . || status=$$?; \
	$(VENV)/bin/ruff format --check . || status=$$?; \
	$(VENV)/bin/mypy --strict agentmarket || status=$$?; \
	exit $$status

# The gates, the suite, then the static analysis; fails when any does (all always run).
test: deps
	status=0; \
	$(MAKE) --no-print-directory lint || status=$$?; \
	$(PY) -m pytest -q -n 2 --dist loadgroup || status=$$?; \
	$(MAKE) --no-print-directory audit || status=$$?; \
	exit $$status

# Slither over contracts/ (mocks in contracts/test/ and node_modules/ excluded) through the solc-js front.
audit: deps $(AUDIT_VENV)/.installed
	$(PY) -m tools.audit --slither $(AUDIT_VENV)/bin/slither --fail-on $(AUDIT_FAIL_ON)

gas: deps
	$(PY) scripts/gas.py --write

bench: deps
	$(PY) scripts/bench.py

compile: deps
	$(PY) -m agentmarket compile

check-artifacts: deps
	$(PY) -m agentmarket compile --check

fuzz: deps
	$(PY) -m pytest tests/property -q --hypothesis-profile=long --hypothesis-show-statistics

clean-venv:
	rm -rf $(VENV) $(AUDIT_VENV) node_modules
