# The README's two commands: `make demo` and `make test`. Both build their own .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint types unit real demo soak bench clean help pg-server browser i18n

help:
	@echo "make demo   - start a throwaway homeserver and walk one request to its outcome"
	@echo "make test   - lint, type-check and run the whole test suite (real Synapse included)"
	@echo "make soak   - long fault runs (many kills of the bot)"
	@echo "make bench  - benchmarks with same-run baselines"
	@echo "make i18n   - extract the messages into the catalogs (bot/locale) and update each language"

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

# The demo speaks DEMO_LANGUAGE in the rooms (ar, zh_Hans, en, fr, ru, es):
# `make demo DEMO_LANGUAGE=fr`. Not LANG: that is the POSIX locale variable, already set in
# most shells (LANG=en_US.UTF-8), so it would choose the demo's language by accident.
DEMO_LANGUAGE ?= en
demo: $(STAMP)
	$(BIN)/python -m bot demo --language $(DEMO_LANGUAGE)

# The catalogs: bot/locale/consensus.pot is extracted from the code (babel.cfg says where);
# each language's .po is updated from it (new messages untranslated, never fuzzy-guessed, so
# tests/unit/test_i18n.py names what is left to translate); English translates to itself.
# The .po files are the source: the bot compiles them in memory when it starts.
I18N_LANGUAGES := ar zh_Hans en fr ru es
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --sort-output -w 100 \
		--project=consensus-bot --msgid-bugs-address= -k markup -k Np_:1,2 -o bot/locale/consensus.pot .
	for lang in $(I18N_LANGUAGES); do \
		$(BIN)/pybabel update --init-missing --no-fuzzy-matching --ignore-obsolete \
			--ignore-pot-creation-date -w 100 -D consensus -i bot/locale/consensus.pot \
			-d bot/locale -l $$lang || exit 1; \
	done
	$(BIN)/python -m bot.devtools.catalogs bot/locale/en/LC_MESSAGES/consensus.po

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
