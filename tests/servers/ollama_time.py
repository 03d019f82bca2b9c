"""Go's time formats as Ollama's API reads and writes them: keep_alive durations, RFC3339Nano stamps."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def rfc3339(moment: datetime) -> str:
    """Go's RFC3339Nano: nanosecond digits (the last three are zero here) and the zone offset."""
    text = moment.isoformat(timespec="microseconds")
    return text[:26] + "000" + text[26:] if moment.utcoffset() else text[:26] + "000Z"


def parse_keep_alive(value: Any) -> float:
    """Seconds (negative: forever), as Ollama's api.Duration reads JSON; ValueError with its text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        # ValueError, not TypeError: callers answer every bad keep_alive with Go's 400.
        raise ValueError("json: cannot unmarshal keep_alive")
    if not isinstance(value, str):
        return float(value)
    text, total, sign = value, 0.0, 1.0
    if text in ("0", "+0", "-0"):
        return 0.0
    if text[:1] in "+-" and text:
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    if not text:
        raise ValueError(f'time: invalid duration "{value}"')
    while text:
        match = re.match(r"^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)?", text)
        if match is None:
            raise ValueError(f'time: invalid duration "{value}"')
        if match[2] is None:
            raise ValueError(f'time: missing unit in duration "{value}"')
        total += float(match[1]) * _UNITS[match[2]]
        text = text[match.end() :]
    return sign * total
