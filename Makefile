# The README's two commands: `make demo` and `make test`. Both build their own .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint types unit real demo soak bench clean help

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

test: lint types
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q -m 'not real'

soak: $(STAMP)
	$(BIN)/pytest -q -m soak -o addopts='' --timeout=3600

demo: $(STAMP)
	$(BIN)/python -m bot demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
