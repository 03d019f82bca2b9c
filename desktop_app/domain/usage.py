"""What each request cost, per-day totals, and the daily budgets an account can set."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ReplyMetrics
from desktop_app.domain.errors import DomainError, domain_error

WARNING_SHARE = 0.8  # of a daily budget: from here on the user is warned
# "refused": stopped by a budget before it was sent; "interrupted": the app died while it streamed.
STATUSES = ("ok", "failed", "stopped", "refused", "interrupted")


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One chat request, as it ended."""

    at: float  # unix time the request ended
    account_id: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_s: float | None
    ttft_s: float | None
    status: str  # one of STATUSES
    error_kind: str  # "" or a DomainError class name
    retries: int = 0  # accounts of the pool tried before this one
    pool_id: str = ""  # the pool the request went through, if any
    cache_read_tokens: int | None = None  # part of prompt_tokens
    cache_write_tokens: int | None = None
    backoff_retries: int = 0  # times this account was asked again before this request (see domain/retries.py)

    @classmethod
    def from_metrics(
        cls,
        metrics: ReplyMetrics,
        *,
        at: float,
        account_id: str,
        model: str,
        status: str,
        error_kind: str = "",
        retries: int = 0,
        pool_id: str = "",
    ) -> UsageRecord:
        return cls(
            at=at,
            account_id=account_id,
            model=model,
            prompt_tokens=metrics.prompt_tokens,
            completion_tokens=metrics.completion_tokens,
            cost_usd=metrics.cost_usd,
            latency_s=metrics.latency_s,
            ttft_s=metrics.ttft_s,
            status=status,
            error_kind=error_kind,
            retries=retries,
            pool_id=pool_id,
            cache_read_tokens=metrics.cache_read_tokens,
            cache_write_tokens=metrics.cache_write_tokens,
            backoff_retries=metrics.backoff_retries,
        )


@dataclass(slots=True)
class DailyUsage:
    """The requests of one local day, one account and one model ("" when summed over models)."""

    day: str  # ISO date, local time
    account_id: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: no request of the group had a known cost
    cache_read_tokens: int = 0  # part of prompt_tokens
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def merge_models(rows: Iterable[DailyUsage]) -> list[DailyUsage]:
    """The rows summed over models: one row per day and account, with model "", in first-seen order."""
    merged: dict[tuple[str, str], DailyUsage] = {}
    for row in rows:
        key = (row.day, row.account_id)
        total = merged.get(key)
        if total is None:
            merged[key] = DailyUsage(
                row.day,
                row.account_id,
                "",
                row.requests,
                row.prompt_tokens,
                row.completion_tokens,
                row.cost_usd,
                row.cache_read_tokens,
                row.cache_write_tokens,
            )
            continue
        total.requests += row.requests
        total.cache_read_tokens += row.cache_read_tokens
        total.cache_write_tokens += row.cache_write_tokens
        total.prompt_tokens += row.prompt_tokens
        total.completion_tokens += row.completion_tokens
        if row.cost_usd is not None:
            total.cost_usd = (total.cost_usd or 0.0) + row.cost_usd
    return list(merged.values())


# --- budgets --------------------------------------------------------------------------------------


class BudgetLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    EXCEEDED = "exceeded"


_SEVERITY = {BudgetLevel.OK: 0, BudgetLevel.WARNING: 1, BudgetLevel.EXCEEDED: 2}


@domain_error
class BudgetExceeded(DomainError):
    action: str = "Raise the budget in Accounts, or send anyway with the override."
    account_id: str = ""


def budget_level(used_tokens: int, used_usd: float, account: Account) -> tuple[BudgetLevel, str]:
    """How today's use stands against the account's daily budgets, and one sentence saying so.

    The worse of the token and the cost budget wins (on a tie, the larger share); an account
    without budgets is always OK, with no sentence.
    """
    candidates: list[tuple[BudgetLevel, float, str]] = []
    if account.daily_budget_tokens:
        share = used_tokens / account.daily_budget_tokens
        detail = f"token budget ({used_tokens:,} of {account.daily_budget_tokens:,})"
        candidates.append((_level(share), share, detail))
    if account.daily_budget_usd:
        share = used_usd / account.daily_budget_usd
        detail = (
            f"cost budget ({_usd(used_usd, account.daily_budget_usd)} of "
            f"{_usd(account.daily_budget_usd, account.daily_budget_usd)})"
        )
        candidates.append((_level(share), share, detail))
    if not candidates:
        return BudgetLevel.OK, ""
    level, share, detail = max(candidates, key=lambda c: (_SEVERITY[c[0]], c[1]))
    # Rounded down, so a warning never reads "100%" before the budget is really used up.
    percent = math.floor(share * 100 + 1e-9)
    return level, f"Account “{account.label}” has used {percent:,}% of its daily {detail}."


def _level(share: float) -> BudgetLevel:
    if share >= 1.0:
        return BudgetLevel.EXCEEDED
    if share >= WARNING_SHARE:
        return BudgetLevel.WARNING
    return BudgetLevel.OK


def _usd(amount: float, budget: float) -> str:
    # Cents for budgets of a dollar or more; small budgets need more places to say anything.
    return f"${amount:,.2f}" if budget >= 1 else f"${amount:,.4f}"
