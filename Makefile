# gridmap: the two commands a new user needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test venv sysdeps-run sysdeps-test db demo serve test-fast bench clean pg-stop

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
	touch $@

venv: $(STAMP)

sysdeps-run:
	@tools/sysdeps.sh run

sysdeps-test:
	@tools/sysdeps.sh test browser

## make run: install, create the embedded SpatiaLite database, load the demo city, serve on :5000
run: venv sysdeps-run
	$(BIN)/gridmap db upgrade
	$(BIN)/gridmap demo --if-empty
	$(BIN)/gridmap run --host $(HOST) --port $(PORT)

## make test: install, start a throwaway PostGIS (or use GRIDMAP_TEST_DATABASE_URL), run the whole suite
test: venv sysdeps-test
	@url="$${GRIDMAP_TEST_DATABASE_URL:-$$(tools/pg_test_cluster.sh | tail -n 1)}" && \
	  echo "PostGIS for tests: $$url" && \
	  GRIDMAP_TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the suite without the slow (browser, benchmark) tests
test-fast: PYTEST_ARGS = -m "not slow"
test-fast: test

bench: venv sysdeps-test
	@url="$${GRIDMAP_TEST_DATABASE_URL:-$$(tools/pg_test_cluster.sh | tail -n 1)}" && \
	  GRIDMAP_BENCH_DATABASE_URL="$$url" $(BIN)/python bench/geocode.py

pg-stop:
	tools/pg_test_cluster.sh stop

clean:
	rm -rf $(VENV) instance .pytest_cache
