"""What a provider's organisation reports about itself (usage, cost, API keys), set beside the ledger.

Provider days are UTC days (both Anthropic and OpenAI bucket by UTC); the ledger's are local days,
so near midnight a request can sit on neighbouring days in the two columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from desktop_app.domain.usage import DailyUsage

ADMIN_KEY_PREFIXES = {"anthropic": "sk-ant-admin", "openai": "sk-admin-"}


def admin_capable(provider_id: str) -> bool:
    """Whether accounts of this provider can hold an organisation admin key."""
    return provider_id in ADMIN_KEY_PREFIXES


def admin_key_problem(provider_id: str, key: str) -> str | None:
    """Why `key` is not an admin key of `provider_id` (one sentence, no full stop), or None."""
    prefix = ADMIN_KEY_PREFIXES.get(provider_id)
    if prefix is None:
        return "only Anthropic and OpenAI accounts take an organisation admin key"
    if not key.startswith(prefix):
        return f"an organisation admin key starts with “{prefix}…”; this looks like an ordinary API key"
    return None


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """Tokens the provider counted on one UTC day for one API key, workspace or project, and model."""

    day: str  # ISO date, UTC
    key_id: str  # "" when the provider did not attribute it to a key (e.g. the Console's workbench)
    scope_id: str  # workspace (Anthropic) or project (OpenAI); "" for the default one
    model: str
    input_tokens: int  # cache reads and writes included
    output_tokens: int
    requests: int | None = None  # OpenAI reports it; Anthropic does not

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ProviderCost:
    """What the provider billed on one UTC day for one workspace or project and line item."""

    day: str
    scope_id: str
    item: str  # Anthropic's description, OpenAI's line item
    amount_usd: float


@dataclass(frozen=True, slots=True)
class OrgKey:
    """One API key of the organisation, as its admin API lists it (never the secret itself)."""

    provider_id: str
    id: str
    name: str
    scope_id: str  # workspace or project id ("" for Anthropic's default workspace)
    status: str  # "active", "inactive", "archived"...
    created: str  # ISO date
    hint: str  # "sk-ant-api03-R2D...igAA": the visible start and end of the key
    admin_account_id: str = ""  # the account whose admin key listed it


def hint_matches(hint: str, key: str) -> bool:
    """Whether `key` has the visible characters of `hint` ("start...end" or "start…end") at both ends."""
    start, sep, end = hint.replace("…", "...").partition("...")
    if not sep or len(start) + len(end) < 8 or len(key) < len(start) + len(end):
        return False
    return key.startswith(start) and key.endswith(end)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One UTC/local day, API key and model: the provider's tokens beside ModelDesk's."""

    day: str
    provider_id: str
    key_id: str
    key_name: str
    account_ids: tuple[str, ...]  # the local accounts that use this key
    model: str
    provider_tokens: int
    local_tokens: int
    local_cost_usd: float | None
    provider_requests: int | None = None
    local_requests: int = 0

    @property
    def difference(self) -> int:
        """Tokens the provider counted that ModelDesk did not send (negative: the other way round)."""
        return self.provider_tokens - self.local_tokens


def bare_model(model: str) -> str:
    """The model without a LiteLLM provider prefix ("anthropic/claude-x" -> "claude-x")."""
    return model.rpartition("/")[2]


def compare(
    provider_id: str,
    usage: Iterable[ProviderUsage],
    local: Iterable[DailyUsage],
    accounts_by_key: Mapping[str, Sequence[str]],
    key_names: Mapping[str, str],
) -> list[Comparison]:
    """Provider rows beside the ledger's rows of the accounts that use the same key.

    Ledger rows of accounts that match no listed key are left out: the provider cannot tell
    their requests apart from any other key's. Newest day first, then by key and model.
    """
    key_of_account = {account: key for key, accounts in accounts_by_key.items() for account in accounts}
    provider: dict[tuple[str, str, str], list[int]] = {}
    requests: dict[tuple[str, str, str], int | None] = {}
    for row in usage:
        group = (row.day, row.key_id, bare_model(row.model))
        provider.setdefault(group, [0])[0] += row.total_tokens
        if row.requests is not None:
            requests[group] = (requests.get(group) or 0) + row.requests
    ours: dict[tuple[str, str, str], tuple[int, float | None, int]] = {}
    for day_row in local:
        key_id = key_of_account.get(day_row.account_id)
        if key_id is None:
            continue
        group = (day_row.day, key_id, bare_model(day_row.model))
        tokens, cost, count = ours.get(group, (0, None, 0))
        if day_row.cost_usd is not None:
            cost = (cost or 0.0) + day_row.cost_usd
        ours[group] = (tokens + day_row.total_tokens, cost, count + day_row.requests)
    rows = []
    for group in sorted(provider.keys() | ours.keys(), key=lambda g: (_desc(g[0]), g[1], g[2])):
        day, key_id, model = group
        tokens, cost, count = ours.get(group, (0, None, 0))
        rows.append(
            Comparison(
                day=day,
                provider_id=provider_id,
                key_id=key_id,
                key_name=key_names.get(key_id, ""),
                account_ids=tuple(accounts_by_key.get(key_id, ())),
                model=model,
                provider_tokens=provider.get(group, [0])[0],
                local_tokens=tokens,
                local_cost_usd=cost,
                provider_requests=requests.get(group),
                local_requests=count,
            )
        )
    return rows


def _desc(day: str) -> str:
    """A sort key that puts later ISO dates first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in day)
