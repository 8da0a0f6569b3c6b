# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first and pinned, so pip takes the CPU build instead of a multi-GB CUDA one.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.modalwatch-installed
DAYS   ?= 28

.PHONY: install demo test services system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/modalwatch demo --out demo-out --days $(DAYS)

# PostgreSQL: the local server if it answers, else start the machine's cluster; the tests fall
# back to MODALWATCH_TEST_PG_URL or a throwaway initdb cluster. Kafka: the tests start Tansu.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
	  || { command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1 \
	       && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; } \
	  || echo "note: no local PostgreSQL started; tests use MODALWATCH_TEST_PG_URL or initdb"

# espeak-ng speaks the real speech the loudness tests measure; headless Chromium loads the report
# and the daemon's pages in the tests of what people see (Debian's packages).
system-deps:
	@command -v espeak-ng >/dev/null 2>&1 \
	  || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	       && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null; } \
	  || echo "note: espeak-ng is missing and could not be installed; the speech loudness test will fail"
	@command -v chromium >/dev/null 2>&1 \
	  || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	       && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; }; } \
	  || echo "note: chromium is missing and could not be installed; the page rendering tests will fail"

# The layering contracts and the code's format first (pyproject.toml: import-linter, ruff); the
# second pytest run executes the runnable examples in detectors/' docstrings.
test: install services system-deps
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet --select E501 .
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q --doctest-modules detectors

bench: install services
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/signals.py
	$(BIN)/python bench/media_ingest.py
	$(BIN)/python bench/drift.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
