"""Logging switches at run time: debug on/off, keys scrubbed, and the last warnings kept for diagnostics.

`setup_logging` (logs.py) creates the rotating file handler; `install` adds to it: a filter that
scrubs every record before any handler writes it, and a `RecentErrors` handler whose lines go into
the diagnostics report. `set_debug` changes the levels without a restart.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime

from desktop_app.services.diagnostics import scrub

RECENT_CAPACITY = 50
# Libraries that stay at WARNING even when debug logging is on. LiteLLM, httpx, openai and ollama
# may echo request details (headers included); botocore logs each SigV4 canonical request (with the
# session token) and google-auth its token requests; qasync logs the repr of every executor call's
# arguments, which can be a message, a key or megabytes of a file being written.
QUIET_LOGGERS = (
    "LiteLLM",
    "litellm",
    "httpx",
    "httpcore",
    "openai",
    "ollama",
    "botocore",
    "boto3",
    "google",
    "urllib3",
    "qasync",
)


def quiet_chatty_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class ScrubFilter(logging.Filter):
    """Rewrites a record's message (and its traceback text) with `scrub` before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_modeldesk_scrubbed", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a bad format string must not lose the record)
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = scrub(message), None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        record._modeldesk_scrubbed = True
        return True


class RecentErrors(logging.Handler):
    """Keeps the last `capacity` WARNING-or-worse records as scrubbed one-line strings."""

    def __init__(self, capacity: int = RECENT_CAPACITY, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self._lines_lock = threading.Lock()
        self.addFilter(ScrubFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
            line = f"{when} {record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_text:
                # The exception's own last line says what went wrong; the report stays short.
                last = record.exc_text.strip().splitlines()[-1]
                line = f"{line} ({last})"
            line = scrub(line)
        except Exception:  # noqa: BLE001 (logging must never raise into the caller)
            self.handleError(record)
            return
        with self._lines_lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lines_lock:
            return list(self._lines)

    def __iter__(self):
        return iter(self.lines())

    def __len__(self) -> int:
        with self._lines_lock:
            return len(self._lines)

    def clear(self) -> None:
        with self._lines_lock:
            self._lines.clear()


def install(root: logging.Logger | None = None, *, capacity: int = RECENT_CAPACITY) -> RecentErrors:
    """Scrub what every root handler writes and start keeping recent errors. Idempotent."""
    root = root or logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
    existing = next((h for h in root.handlers if isinstance(h, RecentErrors)), None)
    if existing is not None:
        return existing
    recent = RecentErrors(capacity)
    root.addHandler(recent)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return recent


def set_debug(enabled: bool, root: logging.Logger | None = None) -> None:
    """DEBUG to the log file when enabled, INFO otherwise; takes effect at once."""
    root = root or logging.getLogger()
    level = logging.DEBUG if enabled else logging.INFO
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.setLevel(level)
    quiet_chatty_loggers()


def debug_enabled(root: logging.Logger | None = None) -> bool:
    return (root or logging.getLogger()).level == logging.DEBUG
