# Every target bootstraps what it needs: .venv from PyPI, node_modules from npm (lock file).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test gas bench audit fuzz compile check-artifacts clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

demo: deps
	$(PY) scripts/demo_trade.py

test: deps
	$(PY) -m pytest -q -n 2 --dist loadgroup

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
	rm -rf $(VENV) node_modules
