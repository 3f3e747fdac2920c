# The README's two commands: `make demo` and `make test`. Both build their own .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint types unit real demo soak bench clean help pg-server browser

help:
	@echo "make demo   - start a throwaway homeserver and walk one request to its outcome"
	@echo "make test   - lint, type-check and run the whole test suite (real Synapse included)"
	@echo "make soak   - long fault runs (many kills of the bot)"
	@echo "make bench  - benchmarks with same-run baselines"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@echo "installing the project and its test tools into $(VENV) ..."
	$(BIN)/pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

# The tests start a throwaway PostgreSQL cluster of their own (tests/pg.py): they need its
# server programs. On a fresh Debian machine (as root) they are installed from the archive.
pg-server:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL for the tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL's initdb was not found: install PostgreSQL (e.g. apt-get install postgresql)"; \
		exit 1; \
	fi

# The real layer opens the published site in headless Chromium (tests/integration/
# test_publish.py): on a fresh Debian machine (as root) it is installed from the archive.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Chromium for the tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium was not found: install it (e.g. apt-get install chromium)"; \
		exit 1; \
	fi

test: lint types pg-server browser
	$(BIN)/pytest -q

unit: $(STAMP) pg-server
	$(BIN)/pytest -q -m 'not real'

soak: $(STAMP) pg-server
	$(BIN)/pytest -q -m soak -o addopts='' --timeout=3600

demo: $(STAMP)
	$(BIN)/python -m bot demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
