"""Shared test set-up: isolated dirs, an in-memory keyring, Qt offscreen, a qasync loop for UI tests."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import logging

import keyring
import pytest

from tests.memory_keyring import MemoryKeyring

# qasync logs every executor call with its arguments at DEBUG: noise in a failure's report, and
# megabytes of repr when a download's chunks are the arguments.
logging.getLogger("qasync").setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, request):
    """Every test gets its own config/data/cache/log dirs; no test touches the user's files."""
    home = tmp_path / "modeldesk-home"
    monkeypatch.setenv("MODELDESK_HOME", str(home))
    if request.node.get_closest_marker("keyring") is None:
        backend = MemoryKeyring()
        previous = keyring.get_keyring()
        keyring.set_keyring(backend)
        yield home
        keyring.set_keyring(previous)
    else:
        yield home


@pytest.fixture(autouse=True)
def logging_put_back():
    """A test that sets up the app's logging (a file handler, DEBUG) leaves it as it found it: a root
    left at DEBUG makes every later test log every executor call, megabytes of arguments included."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    named = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    for handler in [h for h in root.handlers if h not in handlers and not type(h).__module__.startswith("_pytest")]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != named.get(name, logging.NOTSET):
            logger.setLevel(named.get(name, logging.NOTSET))


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = keyring.get_keyring()
    assert isinstance(backend, MemoryKeyring)
    return backend


@pytest.fixture
def qloop(qapp):
    """A qasync loop on the test's QApplication, treated as already running.

    qtbot's waits spin the Qt event loop, which runs asyncio callbacks too, so a UI test starts
    tasks and waits on signals or conditions exactly as the app does. Two details make it safe to
    run many such tests in one session:
    * qasync's `loop.stop()` calls `QApplication.exit()`, after which every nested
      `QEventLoop.exec()` (qtbot's waits) returns at once; the loop is marked stopped instead.
    * Qt objects in reference cycles must not be freed by a collection a worker thread happens to
      trigger ("Timers cannot be stopped from another thread", or a crash): automatic collection
      is off during the test (as in the app, see MainThreadCollector) and runs here, on the GUI thread.
    """
    import qasync
    import shiboken6
    from PySide6.QtCore import QObject

    gc.collect()
    gc.disable()
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook, finalizer=loop._asyncgen_finalizer_hook)
    yield loop
    sys.set_asyncgen_hooks(*hooks)
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    for _ in range(1000):
        if all(t.done() for t in pending):
            break
        qapp.processEvents()
    loop._QEventLoop__is_running = False  # what stop() does, minus QApplication.exit()
    asyncio.events._set_running_loop(None)
    with contextlib.suppress(RuntimeError, TypeError):
        qapp.aboutToQuit.disconnect(loop._after_run_forever)
    loop.close()
    asyncio.set_event_loop(None)
    for qobject in [value for value in vars(loop).values() if isinstance(value, QObject)]:
        shiboken6.delete(qobject)
    del loop
    gc.collect()
    gc.enable()


@pytest.fixture(scope="module")
def llama():
    """A real llama-server on the Gemma 270M GGUF for the module's tests; skips (or fails under
    `make test`) when it is not provisioned."""
    from tests.servers.llama import LlamaServer

    with LlamaServer() as server:
        yield server


@pytest.fixture
def ollama_server(llama):
    """A loopback Ollama with gemma3:270m installed, forwarding its chats to that llama-server."""
    from tests.servers.ollama_server import OllamaServer

    with OllamaServer(chat_upstream=llama.base_url) as server:
        server.install("gemma3:270m")
        yield server
