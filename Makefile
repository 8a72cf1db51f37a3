# Two commands a newcomer needs: `make demo` and `make test`. Everything is installed from this repository's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-chaos bench browser-deps clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's Chromium drives the browser tests; Playwright never downloads a browser of its own.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/coophub demo

test: $(STAMP) browser-deps
	$(PY) -m pytest

# The long fault tests (docs/RELIABILITY.md): kill -9 ×20 during a 10k ingest, 20 hubs partitioned for 60 s, 1e5
# malformed requests… `make test` runs each scenario's short version. Replay one with COOPHUB_TEST_SEED=<seed>.
test-chaos: $(STAMP)
	$(PY) -m pytest tests/faults -m chaos -p no:cacheprovider -s

bench: $(STAMP)
	$(PY) -m bench

# Translators' step (docs/web.md, "Translating"): collect the strings of the code and templates (babel.cfg) and
# add new ones, untranslated, to the Welsh and English catalogues; old ones are dropped, nothing is guessed.
messages: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg --no-location --sort-output --project coophub -o .messages.pot .
	$(VENV)/bin/pybabel -q update -i .messages.pot -d hub/locale -D coophub --no-fuzzy-matching --ignore-obsolete -w 116
	rm -f .messages.pot

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
