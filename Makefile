# Parley: `make run` serves the app, `make test` runs every test. Both start from nothing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint vendor hashes cluster cluster-wipe bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## run: serve Parley on http://localhost:8000 (SQLite + in-process channel layer, nothing to start);
## `make run PORT=8137` serves on another port, its origin (passkeys check it) following
run: export PARLEY_ORIGIN := $(or $(PARLEY_ORIGIN),http://localhost:$(PORT))
run: $(VENV)/.runtime
	$(PY) manage.py migrate --no-input -v0
	@echo "Parley is running at $(PARLEY_ORIGIN)  (use localhost: passkeys refuse 127.0.0.1). Ctrl-C stops it."
	$(PY) -m web.serve -b $(HOST) -p $(PORT) config.asgi:application

## test: lint and type-check (ruff, mypy, tsc, eslint), then every Python test (real Chromium, real Redis), then the JavaScript tests
test: $(VENV)/.dev
	@scripts/ensure-system-deps.sh
	@$(MAKE) --no-print-directory node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npx --no-install tsc -p tsconfig.json
	npx --no-install eslint --max-warnings=0 .
	scripts/pytest-both.sh
	node --test tests/js/

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## vendor: copy the pinned browser libraries from node_modules into static/vendor (+ MANIFEST.json)
vendor: node_modules/.installed
	node scripts/vendor.mjs

## hashes: publish the SHA-256 of every static asset (docs/static-hashes.json) for `python -m client verify`
hashes:
	$(PY) scripts/static_hashes.py

## cluster: the scale-out setup on loopback with production settings: PostgreSQL :5433 (data kept in
## var/cluster), Redis :6380, Daphne nodes http://localhost:8001 and :8002 (docs/operations.md); Ctrl-C stops it
cluster: $(VENV)/.runtime
	@scripts/ensure-system-deps.sh
	$(PY) scripts/cluster.py

## cluster-wipe: delete var/cluster (every account and message of `make cluster`, and its secret key)
cluster-wipe:
	$(PY) scripts/cluster.py --wipe

$(VENV)/.bench: $(VENV)/.dev requirements-bench.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	@touch $@

## bench: every benchmark, loopback only (docs/benchmarks.md; about 15 minutes)
bench: $(VENV)/.bench
	@scripts/ensure-system-deps.sh
	$(PY) bench/protocol_bench.py
	node bench/protocol_bench.mjs
	$(PY) bench/load.py --plot docs/benchmarks-load.png
	$(PY) bench/drain.py
	$(PY) bench/idle_sockets.py
	$(PY) bench/attachments.py --browser
	node bench/attachments.mjs

clean:
	rm -rf $(VENV) node_modules var test-artifacts .pytest_cache .ruff_cache .mypy_cache
