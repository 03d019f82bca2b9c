"""LiteLLM on a thread of its own, with its own asyncio loop.

`import litellm` is slow and large, and LiteLLM's stream wrapper works through buffered chunks
without yielding to the loop, which freezes a window whose loop runs it. So every LiteLLM call runs
on one dedicated, long-lived loop (which also keeps LiteLLM's per-loop client caches valid), and
the GUI thread only receives batched events. Figures: benchmarks/README.md, "Design measurements".

LiteLLM is imported, and runs, with Python's own `__import__` (see `drop_pyside_import_hook`).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import functools
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
# while LiteLLM's thread is busy each one waits. A short interval keeps the window responsive at
# no cost in stream throughput.
SWITCH_INTERVAL_S = 0.0002


def prepare_litellm_environment() -> None:
    """Must run before `import litellm`: no download of its own, no telemetry, quiet logs, and no
    `.env` file read into our environment (LiteLLM's default DEV mode loads the first one it finds)."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # Every table LiteLLM would fetch for itself (Anthropic's beta headers, tokenizers, the blog
    # feed) comes from its bundled copy: ModelDesk talks only to the servers the user set up.
    os.environ["LITELLM_OFFLINE_MODE"] = "True"
    os.environ["LITELLM_MODE"] = "PRODUCTION"
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
    if (
        utils is not None
        and isinstance(getattr(utils, "claude_json_str", None), str)
        and getattr(utils, "json_data", None) is not None
    ):
        setattr(utils, "json_data", None)  # noqa: B010  (a module attribute mypy cannot see)
    registry = sys.modules.get("tiktoken.registry")
    for encoding in list(getattr(registry, "ENCODINGS", {}).values()):
        if getattr(encoding, "_core_bpe", None) is not None and getattr(encoding, "_mergeable_ranks", None):
            encoding._mergeable_ranks = None


# Where LiteLLM keeps the tokenizers it has loaded (each one 20 to 80 MB): caches to clear, and the
# module whose import loads tiktoken's cl100k_base (imported again when next needed).
_TOKENIZER_CACHES = (
    ("litellm.utils", "_select_tokenizer"),
    ("litellm.utils", "_select_custom_tokenizer_helper"),
    ("litellm.rust_bridge.tokenizer", "_native_tiktoken"),
    ("litellm.rust_bridge.tokenizer", "_native_encoding"),
    ("litellm.rust_bridge.tokenizer", "_native_anthropic"),
)
_DEFAULT_ENCODING_MODULE = "litellm.litellm_core_utils.default_encoding"


def release_tokenizers() -> None:
    """Let go of every tokenizer LiteLLM has loaded; the next count loads the one it needs again.

    A tokenizer is 20 MB (cl100k_base) to 80 MB (o200k_base), held for good once loaded, and only
    a count while the user writes needs one (servers report the usage of their replies). Waits for
    a count under way; a caller holding a tokenizer meanwhile keeps its own reference.
    """
    with _COUNTING:
        for module_name, cache_name in _TOKENIZER_CACHES:
            clear = getattr(getattr(sys.modules.get(module_name), cache_name, None), "cache_clear", None)
            if callable(clear):
                clear()
        if sys.modules.pop(_DEFAULT_ENCODING_MODULE, None) is not None:
            package = sys.modules.get(_DEFAULT_ENCODING_MODULE.rpartition(".")[0])
            if package is not None and hasattr(package, "default_encoding"):
                delattr(package, "default_encoding")
        registry = sys.modules.get("tiktoken.registry")
        if registry is not None:
            with getattr(registry, "_lock", threading.Lock()):
                getattr(registry, "ENCODINGS", {}).clear()
    gc.collect(1)  # the tables are freed by reference counting; the encodings' small cycles here
    return_free_memory()


def return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere nothing).

    A tokenizer is some 200,000 small blocks; freed, they leave holes the allocator keeps (about
    12 MB of a 20 MB one) unless asked to return them. Takes a few milliseconds; call it off the
    GUI thread.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl has none
    except (AttributeError, OSError):
        return None


def drop_pyside_import_hook() -> None:
    """Use Python's own `__import__` from now on, if PySide6's feature hook is the one installed.

    The hook serves `from __feature__ import ...`, which ModelDesk never uses. It calls into
    Python twice on every import statement and reads the source of every module imported for the
    first time, which linecache then keeps. LiteLLM pays both: in memory for its thousands of
    modules, and in stream throughput for the imports it runs inside per-chunk functions (e.g.
    openai's `field_get_default`). The hook is process-wide, so it is dropped for good; PySide6's
    own fallback (`__orig_import__`) stays. If something else has replaced the import (or PySide6
    has swapped its hook out for a moment), nothing is touched.
    """
    hook = getattr(builtins, "__feature_import__", None)
    original = getattr(builtins, "__orig_import__", None)
    if hook is not None and original is not None and builtins.__import__ is hook:
        builtins.__import__ = original


_COUNTING = threading.Lock()

# LiteLLM prefixes whose model lookup, for a model its map does not list, asks the server.
_ASKS_THE_SERVER = frozenset({"ollama", "ollama_chat"})
_listed: set[str] = set()  # the map keys `list_local_model` added; engine thread only


def list_local_model(litellm: Any, prefix: str, model: str) -> None:
    """Put `model` of an Ollama server in LiteLLM's map (free, a chat model) unless it is there.

    When a stream ends, LiteLLM records it for its loggers, and for that looks the model up. For an
    Ollama model its map does not list, the lookup posts `/api/show` to the server, synchronously,
    on the engine loop, with LiteLLM's 6,000 s request timeout: every stream of every account then
    waits for that server, and one that accepts and never answers (busy loading, or going away)
    stops them all. Listed, the model is looked up in the map alone. ModelDesk asks Ollama what a
    model is itself (`model_info.ollama_model_info`) and prices no local model. Engine thread only.
    """
    if prefix not in _ASKS_THE_SERVER:
        return
    key = f"{prefix}/{model}"
    if key in _listed or key in litellm.model_cost:
        return
    entry = {"litellm_provider": prefix, "mode": "chat", "input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    litellm.register_model({key: entry}, add_to_provider_model_sets=False)
    _listed.add(key)


def estimate_tokens(
    litellm: Any, model: str, *, messages: list[dict[str, Any]] | None = None, text: str | None = None
) -> int:
    """LiteLLM's token estimate for `messages` (a prompt) or `text` (a reply), counted on request.

    The engine keeps LiteLLM's own counter off (`disable_token_counter`). Left on, it tokenizes the
    whole prompt when every stream starts, to price the stream wrapper (a figure nothing reads),
    and so loads tiktoken's cl100k_base table, about 30 MB held for good, even when the server
    reports its usage, as every server ModelDesk talks to can. The switch is turned on only
    around this count; a LiteLLM thread reading it meanwhile at worst counts once more.
    """
    with _COUNTING:
        litellm.disable_token_counter = False
        try:
            if messages is not None:
                return int(litellm.token_counter(model=model, messages=messages))
            return int(litellm.token_counter(model=model, text=text or "", count_response_tokens=True))
        finally:
            litellm.disable_token_counter = True


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
            import litellm  # deliberately late: see the module docstring

            drop_pyside_import_hook()  # in case PySide6 put it back mid-way (another thread)
            release_duplicate_tables()
            # LiteLLM's import leaves hundreds of thousands of long-lived objects that every full
            # collection would traverse, holding the GIL (on the GUI thread, which runs the app's
            # collections: the window frozen). Frozen, they are never scanned again; they are
            # still freed by reference counting. The import leaves no cyclic garbage to collect first.
            gc.freeze()

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            # See `estimate_tokens`: ModelDesk counts tokens only when a server reports none.
            litellm.disable_token_counter = True
        except BaseException as exc:  # noqa: BLE001 (a broken install must surface, not hang the app)
            if not self._ready.done():  # a waiter may have given up (cancelled) meanwhile
                self._ready.set_exception(exc)
            loop.close()
            return
        if not self._ready.done():
            self._ready.set_result(litellm)
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
        # Shielded: a caller that gives up (cancelled) must not cancel the one shared import.
        return await asyncio.shield(asyncio.wrap_future(self._ready))

    def loaded_module(self) -> ModuleType | None:
        """The litellm module if it is imported already, else None: no wait, no turn of the loop."""
        if self._ready.done() and self._ready.exception() is None:
            return self._ready.result()
        return None

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
