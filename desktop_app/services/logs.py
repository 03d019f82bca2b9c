"""Logging to a rotating file in the log dir. Nothing we log carries a key."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from desktop_app.services.log_control import quiet_chatty_loggers


def setup_logging(log_dir: Path, level: int = logging.INFO) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "modeldesk.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)
    quiet_chatty_loggers()  # see QUIET_LOGGERS for why each one
