"""What the Anthropic and OpenAI admin-API twins share: JSON answers, strict query parsing, daily buckets.

Both APIs answer a report as pages of time buckets: `limit` buckets a page, `has_more` and an
opaque `next_page` token that the next request passes back as `page`. A bucket is listed even
when nothing happened in it (its `results` are then empty). Results are summed over every
dimension that is not in `group_by`, and a dimension not grouped by is null in each result.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.servers._http import Exchange, HttpError, LoopbackServer, Request, read_body, read_request

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
}


class Refusal(Exception):
    """An error answer: status and the provider's error body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, dict(headers or {})


def answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> bytes:
    body = json.dumps(payload).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"content-length: {len(body)}"]
    lines += ["content-type: application/json", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Query:
    """The query string, refused (`bad(message)`) when it names a parameter the endpoint lacks."""

    def __init__(self, raw: str, allowed: Iterable[str], bad: Callable[[str], Refusal]) -> None:
        self.pairs = parse_qsl(raw, keep_blank_values=True)
        self._bad = bad
        allowed = set(allowed)
        for name, _ in self.pairs:
            if name not in allowed:
                raise bad(f"{name}: Extra inputs are not permitted")

    def one(self, name: str) -> str | None:
        values = [v for k, v in self.pairs if k == name]
        if len(values) > 1:
            raise self._bad(f"{name}: only one value is allowed")
        return values[0] if values else None

    def many(self, *names: str) -> list[str]:
        return [v for k, v in self.pairs if k in names]

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.one(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._bad(f"{name}: Input should be a valid integer") from None
        if not low <= value <= high:
            raise self._bad(f"{name}: must be between {low} and {high}")
        return value

    def choices(self, names: Sequence[str], allowed: Iterable[str]) -> list[str]:
        values = self.many(*names)
        allowed = set(allowed)
        for value in values:
            if value not in allowed:
                raise self._bad(f"{names[0]}: {value!r} is not one of {sorted(allowed)}")
        return values


def page_token(day: date) -> str:
    return "page_" + base64.urlsafe_b64encode(day.isoformat().encode()).decode()


def token_day(token: str, bad: Callable[[str], Refusal]) -> date:
    try:
        return date.fromisoformat(base64.urlsafe_b64decode(token.removeprefix("page_")).decode())
    except ValueError:
        raise bad("page: invalid page token") from None


def day_buckets(start: date, end: date | None, limit: int, page: date | None) -> tuple[list[date], date | None]:
    """The days of one page from `page` (or `start`) up to `end` (exclusive), and the next page's day."""
    first = page or start
    last = end or datetime.now(UTC).date() + timedelta(days=1)
    days = []
    day = first
    while day < last and len(days) < limit:
        days.append(day)
        day += timedelta(days=1)
    return days, (day if day < last else None)


def grouped(
    rows: Iterable[dict[str, Any]], dimensions: Sequence[str], group_by: Sequence[str], sums: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows summed over the dimensions not in `group_by`; those come back as None."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[d] if d in group_by else None for d in dimensions)
        total = out.setdefault(key, {**dict(zip(dimensions, key, strict=True)), **dict.fromkeys(sums, 0)})
        for s in sums:
            total[s] += row.get(s, 0)
    return list(out.values())


class JsonTwin(LoopbackServer):
    """A loopback HTTP/1.1 server whose `route(req, path, query)` returns (status, payload)."""

    bad_request = HttpError

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.rate_limited = 0  # the next N requests are answered 429

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            req.raw_body = await read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        return answer(exc.status if isinstance(exc, HttpError) else 400, {"error": str(exc)}, {"connection": "close"})

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        url = urlsplit(req.path)
        try:
            with self._lock:
                if self.rate_limited:
                    self.rate_limited -= 1
                    raise self.too_many()
            status, payload = self.route(req, url.path, url.query)
            data = answer(status, payload)
        except Refusal as refusal:
            data = answer(refusal.status, refusal.body, refusal.headers)
        writer.write(data)
        await writer.drain()
        return True

    def route(self, req: Request, path: str, query: str) -> tuple[int, Any]:
        raise NotImplementedError

    def too_many(self) -> Refusal:
        raise NotImplementedError
