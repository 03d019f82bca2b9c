"""Retries with backoff through the real Dispatcher, LLMService and LiteLLM, against the loopback
OpenAI and Anthropic servers. The waits are recorded by the injected `sleep`, never slept: what is
asserted is the delay the code computed from what the server sent (its retry-after, or the backoff)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, Notice
from desktop_app.domain.errors import RateLimited, ServerError
from desktop_app.domain.pools import Pool
from desktop_app.domain.retries import RetryPolicy, retry_after_s, retryable
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer
from tests.unit.sqlite_stores import store_fixtures

db_path, usage = store_fixtures(UsageStore, "usage.sqlite3", name="usage")
BACKOFF = RetryPolicy(base_s=0.25)


class Waits(list[float]):
    """The `sleep` given to the Dispatcher: it notes each wait and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def anthropic() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


async def ask(
    engine, accounts: list[Account], keys: list[str], target: str, model: str, *, usage=None, retries: int = 2, pools=()
) -> tuple[list, Waits]:
    secrets = SecretStore()
    for account, key in zip(accounts, keys, strict=True):
        await secrets.set(account.id, key)
    settings = Settings(accounts=accounts, pools=list(pools), request_retries=retries)
    waits = Waits()
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: settings,
        usage=usage,
        timeout_s=lambda: 10.0,
        backoff=BACKOFF,
        sleep=waits,
    )
    events = [
        e
        async for e in dispatcher.stream(
            target_id=target, model=model, messages=[ChatMessage("user", "hi")], params=ChatParams()
        )
    ]
    return events, waits


def openai(server: FaultServer) -> Account:
    return Account(provider_id="openai", label="OpenAI", base_url=server.base_url)


# --- the policy ------------------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_bounded() -> None:
    policy = RetryPolicy(retries=3, base_s=1.0, max_wait_s=20.0, max_total_s=30.0)
    assert [policy.delay(n, None) for n in range(4)] == [1.0, 2.0, 4.0, None]
    assert policy.delay(0, 7.0) == 7.0  # the server's retry-after instead of the backoff
    assert policy.delay(0, 21.0) is None  # longer than one wait may be: not waited
    assert policy.delay(1, 10.0, waited_s=25.0) is None  # the total would pass its cap
    assert RetryPolicy(base_s=30.0).delay(0, None) == 20.0  # the backoff itself is capped


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = 1_800_000_000.0
    assert retry_after_s({"Retry-After": "7"}, now) == 7.0
    assert retry_after_s({"retry-after": formatdate(now + 12, usegmt=True)}, now) == 12.0
    assert retry_after_s({"retry-after": formatdate(now - 5, usegmt=True)}, now) == 0.0
    assert retry_after_s({"retry-after": "soon"}, now) is None
    assert retry_after_s({}, now) is None


def test_only_passing_failures_are_retried() -> None:
    assert retryable(RateLimited("x")) and retryable(ServerError("x", status=503)) and retryable(ServerError("x"))
    assert not retryable(ServerError("x", status=501))


# --- one account -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_rate_limit_is_retried_after_the_servers_retry_after_and_the_reply_says_so(engine, usage) -> None:
    with FaultServer() as server:
        server.retry_after = "3"
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-2-429", usage=usage)
        asked = len(server.requests)

    assert waits == [3.0, 3.0] and asked == 3
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == [
        "“OpenAI” is rate-limited; asking it again in 3 s (retry 1 of 2).",
        "“OpenAI” is rate-limited; asking it again in 3 s (retry 2 of 2).",
    ]
    done = events[-1]
    assert isinstance(done, Finished), done
    assert done.metrics.backoff_retries == 2 and done.metrics.retries == 0
    assert "answered after 2 retries" in done.metrics.summary() and "via" not in done.metrics.summary()
    records = sorted(await usage.records(), key=lambda r: r.at)
    assert [(r.status, r.error_kind, r.backoff_retries) for r in records] == [
        ("failed", "RateLimited", 0),
        ("failed", "RateLimited", 1),
        ("ok", "", 2),
    ]


@pytest.mark.asyncio
async def test_a_retry_after_given_as_an_http_date_is_honoured(engine) -> None:
    with FaultServer() as server:
        server.retry_after = formatdate(time.time() + 4, usegmt=True)
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-1-503")

    assert isinstance(events[-1], Finished)
    [wait] = waits
    assert 2.0 < wait <= 4.0  # the date has whole seconds; the request took some of them


@pytest.mark.asyncio
async def test_without_retry_after_the_waits_double(engine) -> None:
    with FaultServer() as server:
        server.retry_after = None
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-2-503")
    assert waits == [0.25, 0.5]
    assert isinstance(events[-1], Finished) and events[-1].metrics.backoff_retries == 2


@pytest.mark.asyncio
async def test_the_retries_are_bounded_and_the_last_failure_is_shown(engine, usage) -> None:
    with FaultServer() as server:
        server.retry_after = None
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-3-500", usage=usage)
        asked = len(server.requests)
    assert waits == [0.25, 0.5] and asked == 3
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ServerError)
    assert events[-1].metrics.backoff_retries == 2
    assert [r.status for r in await usage.records()] == ["failed"] * 3


@pytest.mark.asyncio
async def test_a_retry_after_longer_than_the_cap_is_not_waited(engine) -> None:
    with FaultServer() as server:
        server.retry_after = "60"
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-1-429")
        asked = len(server.requests)
    assert waits == [] and asked == 1
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RateLimited)
    assert not any(isinstance(e, Notice) for e in events)


@pytest.mark.asyncio
async def test_never_retried_after_text_arrived(engine) -> None:
    with FaultServer() as server:
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "fault-cut")
        asked = len(server.requests)
    assert waits == [] and asked == 1 and isinstance(events[-1], Failed)


@pytest.mark.asyncio
async def test_no_retries_when_the_setting_is_zero_nor_for_local_servers(engine) -> None:
    with FaultServer() as server:
        server.retry_after = "1"
        account = openai(server)
        events, waits = await ask(engine, [account], ["sk-test"], account.id, "flaky-1-429", retries=0)
        assert waits == [] and isinstance(events[-1], Failed)
        local = Account(provider_id="openai_compatible", label="Fault lab", base_url=server.base_url)
        events, waits = await ask(engine, [local], ["sk-test"], local.id, "flaky-1-503")
        assert waits == [] and isinstance(events[-1], Failed)


# --- pools -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_pool_moves_on_at_once_and_does_not_retry(engine, anthropic) -> None:
    a = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
    b = Account(provider_id="anthropic", label="Claude, personal", base_url=anthropic.base_url)
    pool = Pool(label="Claude pool", provider_id="anthropic", account_ids=(a.id, b.id))
    anthropic.behaviour["sk-ant-test-a"] = "429"
    anthropic.behaviour["sk-ant-test-b"] = "529"
    events, waits = await ask(
        engine, [a, b], ["sk-ant-test-a", "sk-ant-test-b"], pool.id, "claude-sonnet-4-5", pools=[pool]
    )

    assert [e.account_id for e in events if isinstance(e, AttemptFailed)] == [a.id]
    assert waits == [] and anthropic.counts == {"sk-ant-test-a": 1, "sk-ant-test-b": 1}
    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, ServerError)
    assert failed.metrics.retries == 1 and failed.metrics.backoff_retries == 0


@pytest.mark.asyncio
async def test_one_anthropic_account_is_retried_when_overloaded(engine, anthropic) -> None:
    account = Account(provider_id="anthropic", label="Claude", base_url=anthropic.base_url)
    anthropic.behaviour["sk-ant-test-a"] = "529"
    events, waits = await ask(engine, [account], ["sk-ant-test-a"], account.id, "claude-sonnet-4-5")
    assert waits == [0.25, 0.5] and anthropic.counts == {"sk-ant-test-a": 3}
    assert isinstance(events[-1], Failed) and events[-1].metrics.backoff_retries == 2
