# ModelDesk. `make run` sets up and starts the app; `make test` sets up and runs the whole suite,
# real servers included. Everything lands in .venv and the user's cache dir.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SERVERS_ENV := .cache/test-servers.env

.PHONY: run test servers screenshot bench clean package package-check icons

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

# docs/*.png: the real window under Xvfb with seeded data; the Ollama pane against loopback
# Ollama servers, the llama.cpp pane running the real llama-server from `make servers`.
screenshot: $(VENV)/.installed-test servers
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py docs/screenshot.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Accounts docs/accounts.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Usage docs/usage.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Ollama docs/ollama.png
	set -a; . ./$(SERVERS_ENV); set +a; \
	  xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=llama.cpp docs/llamacpp.png

bench: $(VENV)/.installed-test servers
	set -a; . ./$(SERVERS_ENV); set +a; \
	  for b in startup ttft stream transcript gguf_scan pull_progress; do $(BIN)/python benchmarks/$$b.py || exit 1; done

# --- packaging (added with the PyInstaller bundle) ---------------------------------------------
PYINSTALLER_VERSION := 6.22.3

$(VENV)/.installed-package: $(VENV)/.installed-run
	$(BIN)/pip install --quiet pyinstaller==$(PYINSTALLER_VERSION)
	touch $@

# dist/ModelDesk/ModelDesk: a one-folder bundle (Python, Qt, LiteLLM and its data included).
package: $(VENV)/.installed-package
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN \
	  --distpath dist --workpath build/pyinstaller packaging/modeldesk.spec

# The bundle shows its window offscreen, opens its stores and loads LiteLLM's bundled data.
package-check:
	QT_QPA_PLATFORM=offscreen dist/ModelDesk/ModelDesk --self-test

# resources/icons/hicolor/*: PNGs rendered from resources/modeldesk.svg (commit the result).
icons: $(VENV)/.installed-run
	$(BIN)/python packaging/render_icons.py
# --- end of packaging ----------------------------------------------------------------------------

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
