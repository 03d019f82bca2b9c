"""Google service-account keys, as pasted or loaded from their JSON file (the secret of a Vertex AI account)."""

from __future__ import annotations

import json
from typing import Any

REQUIRED = ("client_email", "private_key", "token_uri")


def parse_service_account(text: str) -> dict[str, Any]:
    """The key file's fields; ValueError with one sentence (never quoting the key) when it is not one."""
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError("the service-account key is not JSON; load the key file Google Cloud gave you") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError("this JSON is not a service-account key (its “type” is not “service_account”)")
    missing = [name for name in REQUIRED if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise ValueError(f"the service-account key has no {missing[0]}")
    if "PRIVATE KEY" not in info["private_key"]:
        raise ValueError("the service-account key's private_key is not a PEM key")
    return info


def one_line(text: str) -> str:
    """The key file as one line of compact JSON (what the key field and the keyring hold)."""
    return json.dumps(parse_service_account(text), separators=(",", ":"))
