# The two commands for a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The packages `make typecheck` holds to mypy --strict.
TYPED := ussd_app/engine ussd_app/store

.PHONY: run test test-sqlite test-postgres lint typecheck setup setup-test setup-online-tts catalogs transcripts clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pybabel compile -d translations --statistics

setup-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pybabel compile -d translations --statistics

run: setup  ## set up and serve the demo content on SQLite at http://127.0.0.1:5000
	$(BIN)/migrantline content check
	$(BIN)/migrantline serve --demo

test: setup-test  ## set up and run every test, on SQLite and then on PostgreSQL
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

# Three processes on two cores: the tests wait on servers, speech and PostgreSQL as much as
# on the CPU (measured on a 2-core machine: 289 s against 368 s with two).
test-sqlite: setup-test  ## every test on SQLite (the embedded default)
	$(BIN)/pytest -n 3

test-postgres: setup-test  ## every test on PostgreSQL (.ci/postgres installs and starts one)
	MIGRANTLINE_TEST_DATABASE_URL="$$(.ci/postgres)" $(BIN)/pytest -n 3

# gTTS without its command line's click<8.2 pin (see pyproject.toml): the library needs only
# requests. Used when MIGRANTLINE_TTS_ONLINE=auto and Google is reachable.
GTTS := gTTS>=2.5,<3
setup-online-tts: setup  ## install gTTS: online speech for languages espeak-ng has no voice for
	$(BIN)/pip install --quiet --no-deps '$(GTTS)'

typecheck: setup-test  ## mypy --strict on the typed packages
	$(BIN)/mypy --strict $(TYPED)

catalogs: setup-test  ## extract interface strings and update every language's catalog
	$(BIN)/pybabel extract -F pyproject.toml -k N_ -k NP_:1,2 --no-location --sort-output -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d translations --statistics

transcripts: setup-test  ## rewrite the golden transcripts (tests/transcripts/) after a wanted change
	$(BIN)/pytest -q -p no:cacheprovider tests/test_transcripts.py --refresh-transcripts

clean:
	rm -rf $(VENV) var
