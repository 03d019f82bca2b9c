"""LiteLLM on a thread of its own, with its own asyncio loop.

Two measured facts drive this (see the reference notes): `import litellm` costs 2-3 s and ~175 MB,
and LiteLLM's stream wrapper spends 250-470 us of CPU per chunk without yielding to the loop while
chunks are buffered, which froze a qasync window for 1.6 s on a fast stream. Running every LiteLLM
call on one dedicated loop keeps the Qt loop free: the GUI thread only receives batched events.
One long-lived loop (not one per request) also keeps LiteLLM's per-loop client caches valid.

LiteLLM is imported, and runs, with Python's own `__import__` (see `_drop_pyside_import_hook`):
PySide6 replaces the built-in with a hook that reads the source of every newly imported module to
look for `from __feature__ import`, and `linecache` keeps every line it read. For LiteLLM's ~2,200
modules that cost ~60 MB of RSS for the life of the process (measured: 260 -> 199 MB after
`import litellm` with a QApplication, PySide6 6.12) and seconds of import time. ModelDesk never
uses `__feature__`.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import gc
import logging
import os
import sys
import threading
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a thread waiting for the GIL waits before the holder is asked to let go (Python's
# default is 5 ms). The GUI thread needs the GIL for every call into Python (slots, event filters,
# overridden virtuals of Python subclasses, qasync's callbacks), hundreds of times a second, and
# while LiteLLM's thread is busy each one waits. Measured on a 20,000-chunk burst (10 ms heartbeat
# on the Qt loop, 2 busy cores): 5 ms -> lag p99 110-370 ms; 1 ms -> 80-160 ms; 0.5 ms -> 40-140 ms;
# 0.2 ms -> 9-20 ms, with stream throughput within the run-to-run noise.
SWITCH_INTERVAL_S = 0.0002


def prepare_litellm_environment() -> None:
    """Must run before `import litellm`: no price-list download, no telemetry, quiet logs."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    os.environ.setdefault("LITELLM_DONT_SHOW_FEEDBACK_BOX", "True")


def release_duplicate_tables() -> None:
    """Let go of the copies of tokenizer tables that nothing counts with; counts stay the same.

    LiteLLM keeps the Anthropic tokenizer both as JSON text (used) and as a parsed tree (unused);
    tiktoken keeps each encoding's ranks in its Rust core (used) and as a dict (pickling only).
    Cheap and idempotent: run on the engine thread after the import and after each request.
    """
    utils = sys.modules.get("litellm.utils")
    if utils is not None and isinstance(getattr(utils, "claude_json_str", None), str) \
            and getattr(utils, "json_data", None) is not None:
        setattr(utils, "json_data", None)  # noqa: B010  (a module attribute mypy cannot see)
    registry = sys.modules.get("tiktoken.registry")
    for encoding in list(getattr(registry, "ENCODINGS", {}).values()):
        if getattr(encoding, "_core_bpe", None) is not None and getattr(encoding, "_mergeable_ranks", None):
            encoding._mergeable_ranks = None


def drop_pyside_import_hook() -> None:
    """Use Python's own `__import__` from now on, if PySide6's feature hook is the one installed.

    The hook serves `from __feature__ import ...`, which ModelDesk never uses. It calls into
    Python twice on every import statement and reads the source of every module imported for the
    first time, which linecache then keeps. LiteLLM pays both: its import (~2,200 modules) kept
    ~60 MB of source in memory, and it runs imports inside functions called for every chunk (e.g.
    openai's `field_get_default`), which cost ~8% of stream throughput. The hook is process-wide,
    so it is dropped for good; PySide6's own fallback (`__orig_import__`) stays. If something else
    has replaced the import (or PySide6 has swapped its hook out for a moment), nothing is touched.
    """
    hook = getattr(builtins, "__feature_import__", None)
    original = getattr(builtins, "__orig_import__", None)
    if hook is not None and original is not None and builtins.__import__ is hook:
        builtins.__import__ = original


class LiteLLMEngine:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[ModuleType] = concurrent.futures.Future()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread and import LiteLLM on it. Idempotent; returns at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="litellm", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            prepare_litellm_environment()
            drop_pyside_import_hook()
            import litellm  # noqa: PLC0415  (deliberately late: see the module docstring)

            drop_pyside_import_hook()  # in case PySide6 put it back mid-way (another thread)
            release_duplicate_tables()
            # LiteLLM's import leaves ~300,000 long-lived objects that every full collection
            # would traverse: ~200 ms holding the GIL (on the GUI thread, which runs the app's
            # collections: the window frozen). Frozen, they are never scanned again; they are
            # still freed by reference counting. The import leaves no cyclic garbage to collect
            # first (gc.collect() finds none).
            gc.freeze()

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            self._ready.set_result(litellm)
        except BaseException as exc:  # a broken install must surface, not hang the app
            self._ready.set_exception(exc)
            loop.close()
            return
        try:
            if not self._stopping.is_set():  # quit while LiteLLM was still importing
                loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def loaded(self) -> bool:
        return self._ready.done() and self._ready.exception() is None

    async def litellm(self) -> ModuleType:
        """The litellm module, once imported (starts the engine if needed)."""
        self.start()
        return await asyncio.wrap_future(self._ready)

    def wait_loaded(self, timeout: float | None = None) -> ModuleType:
        self.start()
        return self._ready.result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the engine loop. The engine must be loaded."""
        if self._loop is None or not self._ready.done():
            coro.close()
            raise RuntimeError("LiteLLM engine is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, callback: Any, *args: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel everything running on the engine loop and end the thread."""
        self._stopping.set()
        with self._lock:
            thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            # Queued even if the loop is not running yet: run_forever then stops at once.
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            # Only possible while `import litellm` is still running; the thread is a daemon.
            log.info("LiteLLM engine thread still importing after %.1f s; leaving it", timeout)
