# ModelDesk. `make run` sets up and starts the app; `make test` sets up and runs the whole suite,
# real servers included. Everything lands in .venv and the user's cache dir; the system packages
# (X server, Secret Service, compiler, Qt's X11 libraries) come from apt-get or dnf, see below.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SERVERS_ENV := .cache/test-servers.env
# The tested versions of every Python package (pyproject.toml keeps the ranges); `make update-deps`.
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(BIN)/python -m pip install --quiet -c $(CONSTRAINTS)
SYSTEM_DEPS := PYTHON=$(PYTHON) bash scripts/system-deps.sh

.PHONY: run test servers screenshot bench clean package package-check icons update-deps \
	system-deps-run system-deps-test system-deps-package

# System packages, checked first (well under a second) so that nothing long starts without them:
# `make test` and `make package` install what is missing (saying what and why; sudo when not
# root), `make run` says what Qt lacks and how to get it. MODELDESK_SYSTEM_DEPS=check: never install.
system-deps-run:
	@$(SYSTEM_DEPS) --check run
system-deps-test:
	@$(SYSTEM_DEPS) test
system-deps-package:
	@$(SYSTEM_DEPS) package

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: system-deps-run $(VENV)/.installed-run
	$(BIN)/modeldesk

# llama-server (built from source), the tiny GGUF model and a LiteLLM Proxy venv: cached, rebuilt when absent.
servers: $(VENV)/.installed-test
	$(BIN)/python scripts/provision_test_servers.py --env-file $(SERVERS_ENV)

test: system-deps-test $(VENV)/.installed-test servers
	bash scripts/run-tests.sh

# docs/*.png: the real window under Xvfb with seeded data; the Ollama pane against loopback
# Ollama servers, the llama.cpp pane running the real llama-server from `make servers`.
screenshot: $(VENV)/.installed-test servers
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py docs/screenshot.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Branches docs/branches.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Vision docs/vision.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Reasoning docs/reasoning.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Tools docs/tools.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Search docs/search.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Accounts docs/accounts.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Usage docs/usage.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=OrgUsage docs/org-usage.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Routes docs/routes.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Ollama docs/ollama.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Compare docs/compare.png
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=Discover --theme=light docs/discover.png
	set -a; . ./$(SERVERS_ENV); set +a; \
	  xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=llama.cpp docs/llamacpp.png
	set -a; . ./$(SERVERS_ENV); set +a; \
	  xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python scripts/screenshot.py --pane=FirstRun docs/first-run.png

bench: $(VENV)/.installed-test servers
	set -a; . ./$(SERVERS_ENV); set +a; \
	  for b in startup ttft stream transcript gguf_scan pull_progress compare; do $(BIN)/python benchmarks/$$b.py || exit 1; done

# --- packaging (added with the PyInstaller bundle) ---------------------------------------------
PYINSTALLER_VERSION := 6.22.3

$(VENV)/.installed-package: $(VENV)/.installed-run $(CONSTRAINTS)
	$(PIP_INSTALL) pyinstaller==$(PYINSTALLER_VERSION)
	touch $@

# dist/ModelDesk/ModelDesk: a one-folder bundle (Python, Qt, LiteLLM and its data included).
package: system-deps-package $(VENV)/.installed-package
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN \
	  --distpath dist --workpath build/pyinstaller packaging/modeldesk.spec

# The bundle shows its window offscreen, opens its stores and loads LiteLLM's bundled data.
package-check:
	QT_QPA_PLATFORM=offscreen dist/ModelDesk/ModelDesk --self-test

# resources/icons/hicolor/*: PNGs rendered from resources/modeldesk.svg (commit the result).
icons: $(VENV)/.installed-run
	$(BIN)/python packaging/render_icons.py
# --- end of packaging ----------------------------------------------------------------------------

# A fresh .venv with the newest versions pyproject.toml allows, pinned into $(CONSTRAINTS) and then
# proven by the whole suite and the benchmarks (compare their figures with benchmarks/README.md
# before committing the new file).
update-deps: system-deps-test
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' pyinstaller==$(PYINSTALLER_VERSION)
	$(BIN)/python scripts/lock_deps.py --extra test pyinstaller==$(PYINSTALLER_VERSION) > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	touch $(VENV)/.installed-run $(VENV)/.installed-test $(VENV)/.installed-package
	$(MAKE) test bench

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
