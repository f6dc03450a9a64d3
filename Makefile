# The two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test soak faketime lint format bench eval screenshot clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

PORT ?= 8000
DATA ?= data

run: $(STAMP)  ## serve on 127.0.0.1:$(PORT) with ./$(DATA) (make run PORT=8001 DATA=data2)
	$(BIN)/tourviews serve --quickstart --port $(PORT) --data $(DATA)

test: $(STAMP)  ## two workers: the suite takes about 11 minutes on 2 cores
	$(BIN)/python -m pytest -n 2 --durations=30

soak: $(STAMP)  ## at full length: 20 SIGKILL cycles, a kill mid-checkpoint, 30 exactness examples, 1,000 visit cuts; then make faketime
	TOURVIEWS_CRASH_CYCLES=20 $(BIN)/python -m pytest tests/crash -s
	TOURVIEWS_EXACT_EXAMPLES=30 $(BIN)/python -m pytest tests/analytics/test_exact.py
	TOURVIEWS_CUT_EXAMPLES=1000 $(BIN)/python -m pytest tests/analytics/test_visit_cut.py
	$(MAKE) faketime

# The storage, ingest and analytics suites with the wall clock 400 days ahead, so that a
# test pinned to a calendar date fails before its day comes. The monotonic clock stays
# real (tests/conftest.py says what that asks of time.sleep); Redis keeps the real clock
# (tests/redis_server.py).
FAKETIME_LIB = $(firstword $(wildcard /usr/lib/*/faketime/libfaketimeMT.so.1))
faketime: $(STAMP)  ## the storage, ingest and analytics suites 400 days ahead (libfaketime)
	test -n "$(FAKETIME_LIB)" || (echo "libfaketime is missing: apt-get install faketime"; exit 1)
	LD_PRELOAD=$(FAKETIME_LIB) FAKETIME=+400d FAKETIME_DONT_FAKE_MONOTONIC=1 \
	  $(BIN)/python -m pytest -n 2 tests/storage tests/ingest tests/analytics

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

screenshot: $(STAMP)  ## docs/dashboard-desktop.png and -phone.png: the demo test in Chromium
	TOURVIEWS_SCREENSHOTS=docs $(BIN)/python -m pytest tests/browser/test_demo.py

bench: $(STAMP)  ## BENCHMARKS.md; the HTTP ones need Debian's wrk
	command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) \
	  >/dev/null 2>&1 || echo "wrk is not installed: the HTTP benchmarks will be skipped"
	$(BIN)/python -m benchmarks

eval: $(STAMP)  ## accuracy on labelled user-agents through HTTP (npm fetches one data set once)
	$(BIN)/python -m benchmarks.accuracy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .eval
