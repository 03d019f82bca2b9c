"""One row per chat request in its own SQLite file, and the daily totals read back from it.

Run like the conversation store (both are a `SqliteStore`): one worker thread makes, uses and
closes the connection; WAL with synchronous=NORMAL; a versioned schema; an unreadable file is
moved aside and a new one started; a write once asked for is never dropped by a cancelled caller.

Days are local days: the day a request ended as the clock on the wall said then.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from desktop_app.domain.accounts import Account
from desktop_app.domain.usage import BudgetLevel, DailyUsage, UsageRecord, budget_level
from desktop_app.services.paths import write_atomically
from desktop_app.services.sqlite_store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
CSV_HEADER = (
    "date",
    "account_id",
    "account",
    "model",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    # Added after the others, so a sheet reading the columns by position still reads them.
    "cache_read_tokens",  # part of prompt_tokens
    "cache_write_tokens",
)

# _MIGRATIONS[n] takes a database at user_version n to n + 1.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
        """
        CREATE TABLE requests (
            id                 INTEGER PRIMARY KEY,
            at                 REAL    NOT NULL,
            account_id         TEXT    NOT NULL,
            model              TEXT    NOT NULL,
            prompt_tokens      INTEGER,
            completion_tokens  INTEGER,
            cost_usd           REAL,
            latency_s          REAL,
            ttft_s             REAL,
            status             TEXT    NOT NULL,
            error_kind         TEXT    NOT NULL DEFAULT '',
            retries            INTEGER NOT NULL DEFAULT 0,
            pool_id            TEXT    NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX requests_by_time ON requests (at)",
        "CREATE INDEX requests_by_account ON requests (account_id, at)",
    ),
    # Prompt-cache tokens (part of prompt_tokens) and how often the same account was asked again.
    1: (
        "ALTER TABLE requests ADD COLUMN cache_read_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN backoff_retries INTEGER NOT NULL DEFAULT 0",
    ),
}

_RECORD_COLUMNS = (
    "at, account_id, model, prompt_tokens, completion_tokens, cost_usd, latency_s, ttft_s, status,"
    " error_kind, retries, pool_id, cache_read_tokens, cache_write_tokens, backoff_retries"
)
# A refused request never reached the provider: it is kept, but it is not a request in the totals.
_SENT = "status != 'refused'"


def local_midnight(day: date) -> float:
    """The unix time at which `day` began here."""
    return datetime.combine(day, time()).timestamp()


def _since(days: int | None) -> float:
    """The start of the window of the last `days` local days, today included (None: all time)."""
    if days is None:
        return float("-inf")
    return local_midnight(date.today() - timedelta(days=max(days, 1) - 1))


class UsageStore(SqliteStore):
    # A write once asked for happens even if its caller is cancelled (see `SqliteStore._write`):
    # the request it records was made (and billed) all the same.
    NAME = "usage"
    DESCRIPTION = "usage history"
    SCHEMA_VERSION = SCHEMA_VERSION
    MIGRATIONS = _MIGRATIONS

    # --- writing ---------------------------------------------------------------------------------

    async def record(self, rec: UsageRecord) -> None:
        await self._write(self._record, rec)

    # --- reading ---------------------------------------------------------------------------------

    async def today(self, account_id: str) -> tuple[int, float]:
        """Tokens (prompt + completion) and cost in USD the account used since local midnight."""
        return await self._read(self._today, account_id, local_midnight(date.today()))

    async def budget(self, account: Account) -> tuple[BudgetLevel, str]:
        """Where the account stands against its daily budgets (see `budget_level`)."""
        tokens, cost = await self.today(account.id)
        return budget_level(tokens, cost, account)

    async def daily(
        self, *, account_id: str | None = None, model: str | None = None, days: int | None = 30
    ) -> list[DailyUsage]:
        """Totals per local day, account and model over the last `days` days (None: all time).

        Newest day first, then by account id and model. Refused requests are not counted.
        """
        return await self._read(self._daily, account_id, model, _since(days))

    async def models(self, *, days: int | None = None) -> list[str]:
        """The models used (in the last `days` days), sorted."""
        return await self._read(self._distinct, "model", _since(days))

    async def account_ids(self, *, days: int | None = None) -> list[str]:
        """The accounts used (in the last `days` days), sorted; may name accounts since removed."""
        return await self._read(self._distinct, "account_id", _since(days))

    async def records(self, limit: int = 100) -> list[UsageRecord]:
        """The most recent records, newest first."""
        return await self._read(self._records, limit)

    async def export_csv(
        self,
        path: Path,
        *,
        labels: Mapping[str, str] | None = None,
        account_id: str | None = None,
        model: str | None = None,
        days: int | None = None,
    ) -> int:
        """Write the daily totals as CSV, atomically; returns the number of rows (header excluded).

        `labels` maps account ids to the names shown in the "account" column; an id it lacks
        (an account since removed) gets an empty name.
        """
        rows = await self.daily(account_id=account_id, model=model, days=days)
        data = _csv_bytes(rows, labels or {})
        await asyncio.to_thread(write_atomically, Path(path), data, mode=0o644)  # a document, not app state
        return len(rows)

    # --- worker-side implementation --------------------------------------------------------------

    def _record(self, rec: UsageRecord) -> None:
        self._conn.execute(
            f"INSERT INTO requests ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.at,
                rec.account_id,
                rec.model,
                rec.prompt_tokens,
                rec.completion_tokens,
                rec.cost_usd,
                rec.latency_s,
                rec.ttft_s,
                rec.status,
                rec.error_kind,
                rec.retries,
                rec.pool_id,
                rec.cache_read_tokens,
                rec.cache_write_tokens,
                rec.backoff_retries,
            ),
        )

    def _today(self, account_id: str, since: float) -> tuple[int, float]:
        tokens, cost = self._conn.execute(
            "SELECT TOTAL(prompt_tokens) + TOTAL(completion_tokens), TOTAL(cost_usd) FROM requests"
            " WHERE account_id = ? AND at >= ?",
            (account_id, since),
        ).fetchone()
        return int(tokens), float(cost)

    def _daily(self, account_id: str | None, model: str | None, since: float) -> list[DailyUsage]:
        where = [_SENT, "at >= ?"]
        args: list[Any] = [since]
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        if model is not None:
            where.append("model = ?")
            args.append(model)
        rows = self._conn.execute(
            "SELECT date(at, 'unixepoch', 'localtime') AS day, account_id, model, COUNT(*),"
            " TOTAL(prompt_tokens), TOTAL(completion_tokens), SUM(cost_usd), TOTAL(cache_read_tokens),"
            " TOTAL(cache_write_tokens)"
            f" FROM requests WHERE {' AND '.join(where)}"
            " GROUP BY day, account_id, model ORDER BY day DESC, account_id, model",
            args,
        )
        return [
            DailyUsage(day, account, model_, count, int(prompt), int(completion), cost, int(read), int(written))
            for day, account, model_, count, prompt, completion, cost, read, written in rows
        ]

    def _distinct(self, column: str, since: float) -> list[str]:
        # `column` is one of two fixed names, never user input.
        rows = self._conn.execute(f"SELECT DISTINCT {column} FROM requests WHERE at >= ? ORDER BY {column}", (since,))
        return [row[0] for row in rows]

    def _records(self, limit: int) -> list[UsageRecord]:
        rows = self._conn.execute(f"SELECT {_RECORD_COLUMNS} FROM requests ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        return [UsageRecord(*row) for row in rows]


def _csv_bytes(rows: list[DailyUsage], labels: Mapping[str, str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            (
                row.day,
                row.account_id,
                labels.get(row.account_id, ""),
                row.model,
                row.requests,
                row.prompt_tokens,
                row.completion_tokens,
                "" if row.cost_usd is None else f"{row.cost_usd:.8f}",
                row.cache_read_tokens,
                row.cache_write_tokens,
            )
        )
    return buffer.getvalue().encode("utf-8")
