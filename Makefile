# ModelDesk. `make run` sets up and starts the app; `make test` sets up and runs the whole suite,
# real servers included. Everything lands in .venv and the user's cache dir.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SERVERS_ENV := .cache/test-servers.env

.PHONY: run test servers screenshot bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/modeldesk

# llama-server (built from source) and the tiny GGUF model: cached, rebuilt when absent.
servers: $(VENV)/.installed-test
	$(BIN)/python scripts/provision_test_servers.py --env-file $(SERVERS_ENV)

test: $(VENV)/.installed-test servers
	bash scripts/run-tests.sh

# docs/screenshot.png: the real window under Xvfb with a seeded conversation.
screenshot: $(VENV)/.installed-test
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py docs/screenshot.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Accounts docs/accounts.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Usage docs/usage.png

bench: $(VENV)/.installed-test
	for b in startup stream transcript; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
