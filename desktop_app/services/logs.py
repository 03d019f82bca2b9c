"""Logging to a rotating file in the log dir. Nothing we log carries a key."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path


def setup_logging(log_dir: Path, level: int = logging.INFO) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "modeldesk.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)
    # LiteLLM and httpx are chatty at INFO and may echo request details: keep them at WARNING.
    # botocore logs each SigV4 canonical request (with the session token) and google-auth its
    # token requests at DEBUG: the same for them.
    for name in ("LiteLLM", "litellm", "httpx", "httpcore", "openai", "botocore", "boto3", "google", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
