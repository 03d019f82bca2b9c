"""Usage records in SQLite: daily totals by local day, filters, today's use, CSV export, recovery, budgets."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import ClassVar

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ReplyMetrics
from desktop_app.domain.errors import DomainError
from desktop_app.domain.usage import (
    BudgetExceeded,
    BudgetLevel,
    DailyUsage,
    UsageRecord,
    budget_level,
    merge_models,
)
from desktop_app.services import paths
from desktop_app.services.accounts.usage import _MIGRATIONS, SCHEMA_VERSION, UsageStore
from desktop_app.services.chat.conversations import StoreClosed
from tests.unit import sqlite_stores


def today() -> date:
    """Asked at use, not at import: a run that crosses midnight must not compare two days."""
    return date.today()


def at(days_ago: int, hour: int = 12, minute: int = 0, second: int = 0) -> float:
    """A unix time on the local day `days_ago` days before today."""
    return datetime.combine(today() - timedelta(days=days_ago), clock(hour, minute, second)).timestamp()


def day(days_ago: int) -> str:
    return (today() - timedelta(days=days_ago)).isoformat()


def rec(
    when: float,
    account_id: str = "work",
    model: str = "qwen2.5-7b",
    prompt: int | None = 100,
    completion: int | None = 20,
    cost: float | None = 0.01,
    status: str = "ok",
    **kwargs,
) -> UsageRecord:
    return UsageRecord(
        at=when,
        account_id=account_id,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        latency_s=1.5,
        ttft_s=0.25,
        status=status,
        error_kind=kwargs.pop("error_kind", ""),
        **kwargs,
    )


db_path, store = sqlite_stores.store_fixtures(UsageStore, "usage.sqlite3")


# --- opening and closing ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_database_is_in_wal_mode_with_a_versioned_schema_and_indexes(
    store: UsageStore, db_path: Path
) -> None:
    assert store.notice is None
    assert sqlite_stores.journal_mode_and_version(db_path) == ("wal", SCHEMA_VERSION)
    with sqlite_stores.raw(db_path) as conn:
        indexes = {
            row[0]: [col[2] for col in conn.execute(f"PRAGMA index_info({row[0]})")]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
    conn.close()
    assert sorted(indexes.values()) == [["account_id", "at"], ["at"]]


@pytest.mark.asyncio
async def test_closing_twice_is_harmless_and_a_closed_store_says_so(db_path: Path) -> None:
    store = UsageStore(db_path)
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.record(rec(at(0)))
    with pytest.raises(StoreClosed):
        await store.daily()


@pytest.mark.asyncio
async def test_records_survive_closing_and_reopening(db_path: Path) -> None:
    first = UsageStore(db_path)
    await first.open()
    record = rec(at(1), pool_id="pool:abc", retries=2, status="failed", error_kind="RateLimited")
    await first.record(record)
    await first.close()

    second = UsageStore(db_path)
    try:
        assert await second.open() is None
        assert await second.records() == [record]
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_a_record_is_written_even_when_its_caller_is_cancelled(store: UsageStore) -> None:
    # The request was made and billed: a Stop or a closing pane must not lose it.
    await sqlite_stores.cancel_while_queued(store, store.record(rec(at(0))))

    assert len(await store.records()) == 1


# --- recording and reading back --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_records_round_trip_with_every_field_newest_first(store: UsageStore) -> None:
    older = rec(at(2), prompt=None, completion=None, cost=None, status="refused", error_kind="BudgetExceeded")
    newer = UsageRecord(
        at=at(0),
        account_id="home",
        model="llama3",
        prompt_tokens=5,
        completion_tokens=7,
        cost_usd=None,
        latency_s=None,
        ttft_s=None,
        status="stopped",
        error_kind="",
        retries=1,
        pool_id="pool:p1",
        cache_read_tokens=1200,
        cache_write_tokens=300,
        backoff_retries=2,
    )
    await store.record(older)
    await store.record(newer)

    assert await store.records() == [newer, older]
    assert await store.records(limit=1) == [newer]


@pytest.mark.asyncio
async def test_daily_totals_group_by_local_day_account_and_model(store: UsageStore) -> None:
    for record in (
        rec(at(0, 9), "work", "qwen2.5-7b", 100, 20, 0.010),
        rec(at(0, 18), "work", "qwen2.5-7b", 300, 40, 0.030),
        rec(at(0, 10), "work", "qwen2.5-0.5b", 50, 5, 0.001),
        rec(at(0, 11), "home", "llama3", 70, 30, None),  # a local model: no price
        rec(at(1, 23, 59, 59), "work", "qwen2.5-7b", 1000, 200, 0.100),  # yesterday, at the very end
        rec(at(0, 0, 0, 0), "home", "llama3", 1, 1, None),  # today, at the very start
        rec(at(3), "home", "llama3", 10, None, 0.5),  # an unknown count counts as none
    ):
        await store.record(record)

    assert await store.daily() == [
        DailyUsage(day(0), "home", "llama3", 2, 71, 31, None),
        DailyUsage(day(0), "work", "qwen2.5-0.5b", 1, 50, 5, pytest.approx(0.001)),
        DailyUsage(day(0), "work", "qwen2.5-7b", 2, 400, 60, pytest.approx(0.04)),
        DailyUsage(day(1), "work", "qwen2.5-7b", 1, 1000, 200, pytest.approx(0.1)),
        DailyUsage(day(3), "home", "llama3", 1, 10, 0, pytest.approx(0.5)),
    ]


@pytest.mark.asyncio
async def test_a_known_cost_is_summed_with_unknown_ones_as_if_they_were_free(store: UsageStore) -> None:
    await store.record(rec(at(0), cost=None))
    await store.record(rec(at(0), cost=0.25))
    [row] = await store.daily()
    assert (row.requests, row.cost_usd) == (2, 0.25)


@pytest.mark.asyncio
async def test_refused_requests_are_kept_but_not_counted_as_requests(store: UsageStore) -> None:
    await store.record(rec(at(0), status="ok"))
    await store.record(rec(at(0), status="failed", prompt=100, completion=None, cost=None))
    await store.record(
        rec(at(0), status="refused", prompt=None, completion=None, cost=None, error_kind="BudgetExceeded")
    )
    await store.record(rec(at(1), status="refused", prompt=None, completion=None, cost=None))

    assert await store.daily() == [DailyUsage(day(0), "work", "qwen2.5-7b", 2, 200, 20, pytest.approx(0.01))]
    assert len(await store.records()) == 4


@pytest.mark.asyncio
async def test_daily_filters_by_account_model_and_period(store: UsageStore) -> None:
    await store.record(rec(at(0), "work", "qwen2.5-7b"))
    await store.record(rec(at(0), "home", "qwen2.5-7b"))
    await store.record(rec(at(5), "work", "mixtral"))
    await store.record(rec(at(29, 0, 0, 1), "work", "qwen2.5-7b"))  # the first moment of a 30-day window
    await store.record(rec(at(30, 23, 59, 59), "work", "qwen2.5-7b"))  # just before it

    assert [(r.day, r.account_id, r.model) for r in await store.daily(account_id="work")] == [
        (day(0), "work", "qwen2.5-7b"),
        (day(5), "work", "mixtral"),
        (day(29), "work", "qwen2.5-7b"),
    ]
    assert [(r.day, r.account_id) for r in await store.daily(model="qwen2.5-7b")] == [
        (day(0), "home"),
        (day(0), "work"),
        (day(29), "work"),
    ]
    assert [r.day for r in await store.daily(account_id="work", model="qwen2.5-7b", days=7)] == [day(0)]
    assert [r.day for r in await store.daily(days=1)] == [day(0), day(0)]
    assert len(await store.daily(days=None)) == 5
    assert await store.daily(account_id="nobody") == []


@pytest.mark.asyncio
async def test_models_and_accounts_are_listed_sorted_and_per_period(store: UsageStore) -> None:
    await store.record(rec(at(0), "work", "qwen2.5-7b"))
    await store.record(rec(at(0), "home", "mixtral"))
    await store.record(rec(at(40), "gone", "gemma-2b"))

    assert await store.models() == ["gemma-2b", "mixtral", "qwen2.5-7b"]
    assert await store.models(days=30) == ["mixtral", "qwen2.5-7b"]
    assert await store.account_ids() == ["gone", "home", "work"]
    assert await store.account_ids(days=30) == ["home", "work"]


@pytest.mark.asyncio
async def test_today_counts_only_this_account_since_local_midnight(store: UsageStore) -> None:
    await store.record(rec(at(0, 0, 0, 0), "work", prompt=1000, completion=500, cost=0.5))
    await store.record(rec(at(0, 13), "work", prompt=300, completion=None, cost=None))
    await store.record(rec(at(1, 23, 59, 59), "work", prompt=9999, completion=9999, cost=9.0))  # yesterday
    await store.record(rec(at(0, 13), "home", prompt=7777, completion=7777, cost=7.0))  # another account
    await store.record(rec(at(0, 14), "work", status="refused", prompt=None, completion=None, cost=None))

    assert await store.today("work") == (1800, 0.5)
    assert await store.today("home") == (15554, 7.0)
    assert await store.today("nobody") == (0, 0.0)


@pytest.mark.asyncio
async def test_budget_compares_todays_use_with_the_accounts_budget(store: UsageStore) -> None:
    account = Account(id="work", provider_id="openai_compatible", label="Work", daily_budget_tokens=1000)
    await store.record(rec(at(1), "work", prompt=5000, completion=0))  # yesterday's use does not count
    assert await store.budget(account) == (
        BudgetLevel.OK,
        "Account “Work” has used 0% of its daily token budget (0 of 1,000).",
    )

    await store.record(rec(at(0), "work", prompt=800, completion=100))
    assert await store.budget(account) == (
        BudgetLevel.WARNING,
        "Account “Work” has used 90% of its daily token budget (900 of 1,000).",
    )


@pytest.fixture
def los_angeles_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset to change the local time zone")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.asyncio
async def test_days_are_local_days_not_utc_days(store: UsageStore, los_angeles_time: None) -> None:
    # 23:30 in Los Angeles is already the next day in UTC.
    late = datetime(2024, 3, 1, 23, 30).timestamp()
    early = datetime(2024, 3, 2, 0, 30).timestamp()
    assert datetime.fromtimestamp(late, UTC).date() == date(2024, 3, 2)
    await store.record(rec(late))
    await store.record(rec(early))

    assert [(r.day, r.requests) for r in await store.daily(days=None)] == [
        ("2024-03-02", 1),
        ("2024-03-01", 1),
    ]


# --- merging models ----------------------------------------------------------------------------------


def test_merge_models_sums_each_day_and_account_over_models() -> None:
    rows = [
        DailyUsage("2024-03-02", "work", "a", 1, 10, 1, 0.5),
        DailyUsage("2024-03-02", "work", "b", 2, 20, 2, None),
        DailyUsage("2024-03-02", "home", "c", 1, 5, 5, None),
        DailyUsage("2024-03-01", "work", "a", 3, 30, 3, 0.25),
        DailyUsage("2024-03-01", "work", "b", 1, 1, 1, 0.25),
    ]
    assert merge_models(rows) == [
        DailyUsage("2024-03-02", "work", "", 3, 30, 3, 0.5),
        DailyUsage("2024-03-02", "home", "", 1, 5, 5, None),
        DailyUsage("2024-03-01", "work", "", 4, 31, 4, 0.5),
    ]
    assert rows[0] == DailyUsage("2024-03-02", "work", "a", 1, 10, 1, 0.5)  # the input is left alone


# --- CSV export ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_export_writes_the_daily_totals_with_labels(store: UsageStore, tmp_path: Path) -> None:
    await store.record(rec(at(0), "work", "qwen2.5-7b", 100, 20, 0.0125, cache_write_tokens=80))
    await store.record(rec(at(0), "work", "qwen2.5-7b", 50, 10, 0.0025, cache_read_tokens=40))
    await store.record(rec(at(0), "home", "llama3", 7, 3, None))
    await store.record(rec(at(2), "gone", "gemma-2b", 1, 2, 0.000001))
    target = tmp_path / "export" / "usage.csv"

    count = await store.export_csv(target, labels={"work": "Work, main", "home": "Home “lab”"})

    assert count == 3
    assert target.read_bytes().decode("utf-8") == (
        "date,account_id,account,model,requests,prompt_tokens,completion_tokens,cost_usd,cache_read_tokens,cache_write_tokens\r\n"
        f"{day(0)},home,Home “lab”,llama3,1,7,3,,0,0\r\n"
        f'{day(0)},work,"Work, main",qwen2.5-7b,2,150,30,0.01500000,40,80\r\n'
        f"{day(2)},gone,,gemma-2b,1,1,2,0.00000100,0,0\r\n"
    )


@pytest.mark.asyncio
async def test_export_applies_the_filters_and_writes_a_header_when_nothing_matches(
    store: UsageStore, tmp_path: Path
) -> None:
    await store.record(rec(at(0), "work", "qwen2.5-7b"))
    await store.record(rec(at(0), "home", "qwen2.5-7b"))
    await store.record(rec(at(0), "work", "mixtral"))
    await store.record(rec(at(50), "work", "qwen2.5-7b"))
    target = tmp_path / "usage.csv"

    assert await store.export_csv(target, labels={"work": "Work"}, account_id="work", model="qwen2.5-7b", days=30) == 1
    assert target.read_text("utf-8").splitlines() == [
        "date,account_id,account,model,requests,prompt_tokens,completion_tokens,cost_usd,cache_read_tokens,cache_write_tokens",
        f"{day(0)},work,Work,qwen2.5-7b,1,100,20,0.01000000,0,0",
    ]
    assert await store.export_csv(target, model="nothing") == 0
    assert target.read_bytes() == (
        b"date,account_id,account,model,requests,prompt_tokens,completion_tokens,cost_usd,cache_read_tokens,cache_write_tokens\r\n"
    )


@pytest.mark.asyncio
async def test_export_replaces_a_file_whole_or_not_at_all(
    store: UsageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.record(rec(at(0)))
    target = tmp_path / "usage.csv"
    target.write_text("an older export that is much longer than the new one\n" * 100, "utf-8")

    await store.export_csv(target)
    assert target.read_bytes().count(b"\r\n") == 2
    written = target.read_bytes()

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    await store.record(rec(at(0), "home"))
    monkeypatch.setattr(paths.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        await store.export_csv(target)
    assert target.read_bytes() == written  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "usage.csv"]  # no temp file left behind


# --- recovery from a broken file -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_database_is_moved_aside_with_a_notice(db_path: Path) -> None:
    garbage = sqlite_stores.write_garbage(db_path)

    async with sqlite_stores.open_set_aside(UsageStore, db_path) as (store, notice, moved):
        assert moved.read_bytes() == garbage
        assert (
            notice
            == store.notice
            == (
                "Your usage history could not be read (the file is not a readable database), "
                f"so it was moved to {moved} and ModelDesk started a new one."
            )
        )
        await store.record(rec(at(0)))
        assert len(await store.records()) == 1
    with sqlite_stores.raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


@pytest.mark.asyncio
async def test_a_database_from_a_newer_version_is_moved_aside_untouched(db_path: Path) -> None:
    original = sqlite_stores.write_newer_database(db_path)

    async with sqlite_stores.open_set_aside(UsageStore, db_path) as (store, notice, moved):
        assert moved.read_bytes() == original
        assert notice is not None
        assert "newer version of ModelDesk" in notice
        assert str(moved) in notice
        assert await store.records() == []


# --- budgets -------------------------------------------------------------------------------------------


def _account(tokens: int | None = None, usd: float | None = None) -> Account:
    return Account(provider_id="openai_compatible", label="X", daily_budget_tokens=tokens, daily_budget_usd=usd)


@pytest.mark.parametrize(
    ("used", "level", "message"),
    [
        (0, BudgetLevel.OK, "Account “X” has used 0% of its daily token budget (0 of 10,000)."),
        (7999, BudgetLevel.OK, "Account “X” has used 79% of its daily token budget (7,999 of 10,000)."),
        (8000, BudgetLevel.WARNING, "Account “X” has used 80% of its daily token budget (8,000 of 10,000)."),
        (8300, BudgetLevel.WARNING, "Account “X” has used 83% of its daily token budget (8,300 of 10,000)."),
        # Rounded down: never "100%" while there is budget left.
        (9999, BudgetLevel.WARNING, "Account “X” has used 99% of its daily token budget (9,999 of 10,000)."),
        (10000, BudgetLevel.EXCEEDED, "Account “X” has used 100% of its daily token budget (10,000 of 10,000)."),
        (25000, BudgetLevel.EXCEEDED, "Account “X” has used 250% of its daily token budget (25,000 of 10,000)."),
    ],
)
def test_token_budget_thresholds(used: int, level: BudgetLevel, message: str) -> None:
    assert budget_level(used, 123.0, _account(tokens=10_000)) == (level, message)


@pytest.mark.parametrize(
    ("used", "level", "message"),
    [
        (0.79, BudgetLevel.OK, "Account “X” has used 79% of its daily cost budget ($0.79 of $1.00)."),
        (0.80, BudgetLevel.WARNING, "Account “X” has used 80% of its daily cost budget ($0.80 of $1.00)."),
        (1.00, BudgetLevel.EXCEEDED, "Account “X” has used 100% of its daily cost budget ($1.00 of $1.00)."),
    ],
)
def test_cost_budget_thresholds(used: float, level: BudgetLevel, message: str) -> None:
    assert budget_level(10**9, used, _account(usd=1.0)) == (level, message)


def test_a_small_cost_budget_is_shown_with_enough_places() -> None:
    assert budget_level(0, 0.0425, _account(usd=0.05)) == (
        BudgetLevel.WARNING,
        "Account “X” has used 85% of its daily cost budget ($0.0425 of $0.0500).",
    )


def test_the_worse_of_tokens_and_cost_wins() -> None:
    both = _account(tokens=1000, usd=1.0)
    assert budget_level(500, 0.9, both) == (
        BudgetLevel.WARNING,
        "Account “X” has used 90% of its daily cost budget ($0.90 of $1.00).",
    )
    assert budget_level(1200, 0.9, both) == (
        BudgetLevel.EXCEEDED,
        "Account “X” has used 120% of its daily token budget (1,200 of 1,000).",
    )
    # Both warning: the larger share is the one to mention.
    assert budget_level(850, 0.95, both)[1] == "Account “X” has used 95% of its daily cost budget ($0.95 of $1.00)."
    assert budget_level(100, 0.1, both)[0] is BudgetLevel.OK


def test_no_budget_is_always_ok_and_silent() -> None:
    assert budget_level(10**12, 10**6, _account()) == (BudgetLevel.OK, "")


def test_budget_exceeded_is_a_domain_error_that_says_what_to_do() -> None:
    error = BudgetExceeded("Account “X” has used 100% of its daily token budget (1,000 of 1,000).", account_id="abc")
    assert isinstance(error, DomainError)
    assert error.kind == "BudgetExceeded"
    assert str(error) == error.message
    assert error.action == "Raise the budget in Accounts, or send anyway with the override."
    assert error.account_id == "abc"
    with pytest.raises(AttributeError):
        error.message = "changed"  # type: ignore[misc]


def test_a_record_is_made_from_reply_metrics() -> None:
    metrics = ReplyMetrics(
        ttft_s=0.2, tokens_per_s=50.0, prompt_tokens=10, completion_tokens=5, cost_usd=0.001, latency_s=1.1
    )
    assert UsageRecord.from_metrics(
        metrics, at=1.0, account_id="a", model="m", status="ok", retries=1, pool_id="pool:p"
    ) == UsageRecord(
        at=1.0,
        account_id="a",
        model="m",
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=0.001,
        latency_s=1.1,
        ttft_s=0.2,
        status="ok",
        error_kind="",
        retries=1,
        pool_id="pool:p",
    )


class _FirstSchemaStore(UsageStore):
    """The usage store as it was at schema 1 (before cache tokens and backoff retries were kept)."""

    SCHEMA_VERSION = 1
    MIGRATIONS: ClassVar[Mapping[int, tuple[str, ...]]] = {0: _MIGRATIONS[0]}


@pytest.mark.asyncio
async def test_a_schema_1_ledger_is_migrated_and_keeps_its_records(db_path: Path) -> None:
    old = _FirstSchemaStore(db_path)
    await old.open()
    await old._write(
        lambda: old._conn.execute(
            "INSERT INTO requests (at, account_id, model, prompt_tokens, completion_tokens, cost_usd, latency_s,"
            " ttft_s, status, error_kind, retries, pool_id) VALUES (?, 'work', 'gpt-4o', 100, 20, 0.01, 1.5, 0.25,"
            " 'ok', '', 1, 'pool:p1')",
            (at(1),),
        )
    )
    await old.close()
    assert sqlite_stores.journal_mode_and_version(db_path) == ("wal", 1)

    store = UsageStore(db_path)
    await store.open()
    try:
        assert store.notice is None
        [kept] = await store.records()
        assert (kept.prompt_tokens, kept.retries, kept.pool_id) == (100, 1, "pool:p1")
        assert (kept.cache_read_tokens, kept.cache_write_tokens, kept.backoff_retries) == (None, None, 0)
        await store.record(rec(at(0), model="gpt-4o", cache_read_tokens=60, cache_write_tokens=10))
        rows = await store.daily(days=None)
        assert [(r.day, r.cache_read_tokens, r.cache_write_tokens) for r in rows] == [(day(0), 60, 10), (day(1), 0, 0)]
    finally:
        await store.close()
    assert sqlite_stores.journal_mode_and_version(db_path) == ("wal", SCHEMA_VERSION)
