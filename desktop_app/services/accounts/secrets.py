"""API keys for accounts, kept in the OS keyring and nowhere else we write.

Every keyring call runs on one dedicated worker thread with a timeout: the Secret Service is a
D-Bus round trip that can hang for minutes (activation timeout) or wait on an unlock prompt, and
the event loop is the GUI thread. When the keyring is missing, untrustworthy, hangs or fails, the
store keeps keys in memory for the rest of the session and says so in one sentence (`notice`).

Keys never reach a log record, an exception message or `repr`; we never write them to a file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import chainer, fail, null

log = logging.getLogger(__name__)

SERVICE = "ModelDesk"
# Read once by start() to prove the backend answers; never written.
_PROBE_USERNAME = "modeldesk-probe"

# Backends from these packages store keys in a file of their own (plaintext, or encrypted with a
# password asked for on the console): keyring picks keyrings.alt silently when it is installed,
# so they are refused by module name, never trusted.
_FILE_BACKEND_MODULES = ("keyrings.alt", "keyrings.cryptfile")

_MEMORY_ONLY = "keys are kept in memory for this session only and will be asked for again next time."
NOTICE_NO_KEYRING = f"No usable system keyring was found, so {_MEMORY_ONLY}"
NOTICE_FILE_KEYRING = f"The only keyring available would write keys to a file, so {_MEMORY_ONLY}"
NOTICE_LOCKED = f"The system keyring is locked, so {_MEMORY_ONLY}"
NOTICE_HUNG = f"The system keyring did not answer in time, so {_MEMORY_ONLY}"
NOTICE_FAILED = f"The system keyring reported an error, so {_MEMORY_ONLY}"

_T = TypeVar("_T")
_Job = tuple[concurrent.futures.Future[Any], Callable[[], Any]]


class _Abandoned(Exception):
    """A queued call that never ran because the worker was given up on."""


class _Worker(concurrent.futures.Executor):
    """One daemon thread that runs calls in order.

    `ThreadPoolExecutor` threads are joined at interpreter exit, so one keyring call stuck in
    D-Bus would keep the app from quitting until D-Bus gives up (120 s when activation hangs); a
    daemon thread does not hold up exit.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[_T]:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("the secrets worker has been shut down")
            future: concurrent.futures.Future[_T] = concurrent.futures.Future()
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:  # noqa: BLE001 (handed to the awaiting coroutine, which decides)
                future.set_exception(exc)
            else:
                future.set_result(result)
            del item, future, call

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None and item[0].set_running_or_notify_cancel():
                        item[0].set_exception(_Abandoned())
            self._queue.put(None)
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()


class _BackendFailed(Exception):
    """Internal: a keyring call timed out or raised. Never leaves this module."""

    def __init__(self, notice: str, detail: str, *, hung: bool = False) -> None:
        super().__init__(detail)
        self.notice = notice
        self.detail = detail
        self.hung = hung


def _file_backend(backend: keyring.backend.KeyringBackend) -> bool:
    module = type(backend).__module__
    return any(module == name or module.startswith(name + ".") for name in _FILE_BACKEND_MODULES)


def _describe(backend: keyring.backend.KeyringBackend) -> str:
    try:
        return str(backend.name)
    except Exception:  # noqa: BLE001 (a third-party classproperty; the name is only for display)
        return type(backend).__qualname__


def _unusable(backend: keyring.backend.KeyringBackend) -> bool:
    return isinstance(backend, (fail.Keyring, null.Keyring)) or _file_backend(backend)


def _resolve(
    backend: keyring.backend.KeyringBackend,
) -> tuple[keyring.backend.KeyringBackend | None, str]:
    """The backend to use, or None and the notice that says why not. Runs on the worker."""
    if isinstance(backend, chainer.ChainerBackend):
        # The chainer falls through to the next backend on error, which could be a file one:
        # use its best trusted member directly instead.
        members = list(backend.backends)
        trusted = [member for member in members if not _unusable(member)]
        if trusted:
            return trusted[0], ""
        if any(map(_file_backend, members)):
            return None, NOTICE_FILE_KEYRING
        return None, NOTICE_NO_KEYRING
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None, NOTICE_NO_KEYRING
    if _file_backend(backend):
        return None, NOTICE_FILE_KEYRING
    return backend, ""


class SecretStore:
    """Keys by account id: service "ModelDesk", username = account id.

    `persistent` is True while keys go to a real OS keyring. Otherwise (no keyring, a file-based
    one, or one that hung or failed) keys live in a dict for this session and `notice` says so;
    `on_degraded(notice)` is called once, on the event loop, when the store enters memory mode,
    whether at `start()` or later. Values set or read this session are remembered, so a keyring
    that fails mid-session loses nothing already known.

    Backend errors never reach callers: `get`/`set`/`delete` raise only for bad arguments
    (`ValueError`/`TypeError`) or after `close()` (`RuntimeError`), never with a key in them.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        backend: keyring.backend.KeyringBackend | None = None,
        on_degraded: Callable[[str], None] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s
        self._given_backend = backend
        self._on_degraded = on_degraded
        self._backend: keyring.backend.KeyringBackend | None = None
        self._backend_name = "none"
        self._notice: str | None = None
        self._memory: dict[str, str] = {}
        self._read_at: dict[str, float] = {}  # account id -> when `get` last read it from the keyring
        self._worker: _Worker | None = _Worker("secrets")
        self._started = False
        self._closed = False
        self._start_lock = asyncio.Lock()

    # -- state ---------------------------------------------------------------------------------

    @property
    def persistent(self) -> bool:
        return self._backend is not None

    @property
    def backend_name(self) -> str:
        return self._backend_name

    @property
    def notice(self) -> str | None:
        return self._notice

    def __repr__(self) -> str:
        return (
            f"<SecretStore backend={self._backend_name!r} persistent={self.persistent} "
            f"started={self._started} closed={self._closed}>"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Find and probe the keyring; fall back to memory mode if it is unusable. Idempotent."""
        self._check_open()
        async with self._start_lock:
            if self._started:
                return
            try:
                backend, notice = await self._run(self._probe)
            except _BackendFailed as failure:
                self._started = True
                self._degrade(failure, during="start")
                return
            self._started = True
            if backend is None:
                log.warning("No trusted keyring backend; keeping keys in memory")
                self._enter_memory_mode(notice)
                return
            self._backend = backend
            self._backend_name = _describe(backend)
            log.info("Keys are stored in the system keyring (%s)", self._backend_name)

    async def close(self) -> None:
        """Stop the worker without waiting for a hung call, and forget keys held in memory."""
        if self._closed:
            return
        self._closed = True
        self._abandon_worker()
        self._backend = None
        self._memory.clear()
        self._read_at.clear()

    # -- keys ----------------------------------------------------------------------------------

    async def get(self, account_id: str, *, max_age_s: float = 0.0) -> str | None:
        """The account's key, or None. With `max_age_s`, a value read from the keyring less than that
        long ago is given again without a second keyring call (a Send checks the key, then sends with it)."""
        _check_account_id(account_id)
        await self._ensure_started()
        backend = self._backend
        read_at = self._read_at.get(account_id)
        if backend is not None and read_at is not None and time.monotonic() - read_at < max_age_s:
            return self._memory.get(account_id)
        if backend is not None:
            try:
                value = await self._run(backend.get_password, SERVICE, account_id)
            except _BackendFailed as failure:
                self._degrade(failure, during="get")
            else:
                if value is None:
                    self._memory.pop(account_id, None)
                else:
                    self._memory[account_id] = value
                self._read_at[account_id] = time.monotonic()
                return value
        return self._memory.get(account_id)

    async def set(self, account_id: str, secret: str) -> None:
        _check_account_id(account_id)
        if not isinstance(secret, str):
            raise TypeError(f"a key must be a str, not {type(secret).__name__}")
        if not secret:
            raise ValueError("a key must not be empty")
        await self._ensure_started()
        # Kept before the keyring call so a failure or timeout loses nothing.
        self._memory[account_id] = secret
        self._read_at.pop(account_id, None)
        backend = self._backend
        if backend is not None:
            try:
                await self._run(backend.set_password, SERVICE, account_id, secret)
            except _BackendFailed as failure:
                self._degrade(failure, during="set", redact=secret)

    async def delete(self, account_id: str) -> None:
        """Forget the key; a missing key is not an error."""
        _check_account_id(account_id)
        await self._ensure_started()
        self._memory.pop(account_id, None)
        self._read_at.pop(account_id, None)
        backend = self._backend
        if backend is not None:
            try:
                await self._run(_delete_quietly, backend, account_id)
            except _BackendFailed as failure:
                log.warning("The key of account %s may still be in the system keyring", account_id)
                self._degrade(failure, during="delete")

    # -- internals -----------------------------------------------------------------------------

    def _probe(self) -> tuple[keyring.backend.KeyringBackend | None, str]:
        """Runs on the worker: resolve the backend and read one entry from it."""
        given = self._given_backend if self._given_backend is not None else keyring.get_keyring()
        backend, notice = _resolve(given)
        if backend is not None:
            backend.get_password(SERVICE, _PROBE_USERNAME)
        return backend, notice

    async def _ensure_started(self) -> None:
        self._check_open()
        if not self._started:
            await self.start()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the secret store is closed")

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on the worker within the timeout; any failure becomes `_BackendFailed`."""
        worker = self._worker
        if worker is None:
            raise _BackendFailed(NOTICE_FAILED, "the worker was stopped")
        try:
            future = asyncio.wrap_future(worker.submit(fn, *args))
        except RuntimeError:
            raise _BackendFailed(NOTICE_FAILED, "the worker was stopped") from None
        try:
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            # A keyring that raises its own TimeoutError is treated the same: given up on.
            detail = f"no answer within {self._timeout_s:g} s"
            raise _BackendFailed(NOTICE_HUNG, detail, hung=True) from None
        except _Abandoned:
            raise _BackendFailed(NOTICE_HUNG, "an earlier call hung", hung=True) from None
        except keyring.errors.KeyringLocked as exc:
            raise _BackendFailed(NOTICE_LOCKED, _exception_detail(exc)) from None
        except Exception as exc:  # noqa: BLE001 (any backend's failure degrades to memory)
            raise _BackendFailed(NOTICE_FAILED, _exception_detail(exc)) from None

    def _degrade(self, failure: _BackendFailed, *, during: str, redact: str | None = None) -> None:
        detail = failure.detail
        for secret in (redact, *self._memory.values()):
            if secret:
                detail = detail.replace(secret, "***")
        # Redact before shortening, so no prefix of a key survives the cut.
        detail = detail[:300]
        log.warning("Keyring %s failed (%s); keys stay in memory this session", during, detail)
        if failure.hung:
            # The thread is stuck in the call: leave it behind so nothing queues behind it.
            self._abandon_worker()
        self._enter_memory_mode(failure.notice)

    def _enter_memory_mode(self, notice: str) -> None:
        self._backend = None
        self._backend_name = "none"
        if self._notice is not None:
            return
        self._notice = notice
        if self._on_degraded is not None:
            try:
                self._on_degraded(notice)
            except Exception:
                log.exception("The on_degraded callback failed")

    def _abandon_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=False, cancel_futures=True)


def _delete_quietly(backend: keyring.backend.KeyringBackend, account_id: str) -> None:
    # PasswordDeleteError is "no such entry" to the Secret Service, macOS and Windows backends
    # alike; whatever else it means, a later get() still reads the keyring.
    with contextlib.suppress(keyring.errors.PasswordDeleteError):
        backend.delete_password(SERVICE, account_id)


def _check_account_id(account_id: str) -> None:
    if not isinstance(account_id, str):
        raise TypeError(f"an account id must be a str, not {type(account_id).__name__}")
    if not account_id:
        raise ValueError("an account id must not be empty")


def _exception_detail(exc: BaseException) -> str:
    text = str(exc)
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{name}: {text}" if text else name
