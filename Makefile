# Huế GIS — `make run` serves the API and map on http://127.0.0.1:8000, `make test` runs all tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench lint system venv web db-up demo clean-db help

help:
	@echo "make run    set everything up, load the demo data, serve on http://$(HOST):$(PORT)"
	@echo "make test   set everything up and run the whole test suite"
	@echo "make run PORT=8123   another port (any number of checkouts run side by side)"
	@echo "huegis db status     the local database's URLs (psql, QGIS, DBeaver)"
	@echo "make bench  run the benchmarks (bench/README.md)"
	@echo "make lint   ruff"

system:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: system $(STAMP) web

# MapLibre GL JS (served by the app) and the style-spec validator (tests), from the npm
# registry at the versions of web/package-lock.json; nothing is bundled or committed.
WEB_STAMP := web/node_modules/.installed-stamp
$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

web: system $(WEB_STAMP)

# Starts the managed cluster unless HUEGIS_DATABASE_URL points elsewhere, then migrates.
db-up: venv
	$(BIN)/huegis db migrate

demo: db-up
	$(BIN)/huegis load demo --if-empty

run: demo
	$(BIN)/huegis serve --host $(HOST) --port $(PORT)

# The managed cluster is started first (unless the tests use another server), so a failure
# to start says why once, instead of in every test.
test: venv
	$(BIN)/ruff check gis api layers tests bench migrations scripts
	@test -n "$$HUEGIS_TEST_DATABASE_URL" || $(BIN)/huegis db up
	$(BIN)/python -m pytest tests gis layers api --doctest-modules

lint: venv
	$(BIN)/ruff check gis api layers tests bench migrations scripts

bench: venv
	@bash scripts/system-deps.sh --bench
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_queries.py
	$(BIN)/python bench/bench_tiles.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_incidents.py

clean-db:
	-$(BIN)/huegis db down
	rm -rf var/pg
