"""Pools and budgets through the real Dispatcher, LLMService and LiteLLM's Anthropic adapter,
against the strict loopback Anthropic server (two keys = two accounts on one provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, Notice, TextDelta
from desktop_app.domain.errors import AuthFailed, RateLimited, ServerError, Unreachable
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.settings import Settings
from desktop_app.domain.usage import BudgetExceeded, UsageRecord
from desktop_app.services.account_state import AccountStates
from desktop_app.services.dispatch import Dispatcher
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.llm import LLMService
from desktop_app.services.secrets import SecretStore
from desktop_app.services.usage import UsageStore
from tests.servers.anthropic_fault import AnthropicServer, organization_id

KEY_A, KEY_B = "sk-ant-test-a", "sk-ant-test-b"
MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def engine() -> Iterator[LiteLLMEngine]:
    engine = LiteLLMEngine()
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


class World:
    def __init__(self, engine, server, secrets, usage, strategy=Strategy.FAILOVER, **budgets):
        self.a = Account(provider_id="anthropic", label="Claude, work", base_url=server.base_url, **budgets)
        self.b = Account(provider_id="anthropic", label="Claude, personal", base_url=server.base_url)
        self.pool = Pool(label="Claude pool", provider_id="anthropic", account_ids=(self.a.id, self.b.id),
                         strategy=strategy)
        self.settings = Settings(accounts=[self.a, self.b], pools=[self.pool])
        self.states = AccountStates()
        self.usage = usage
        self.dispatcher = Dispatcher(llm=LLMService(engine=engine), secrets=secrets, states=self.states,
                                     settings=lambda: self.settings, usage=usage, timeout_s=lambda: 10.0)

    async def ask(self, target_id: str, override: bool = False) -> list:
        return [event async for event in self.dispatcher.stream(
            target_id=target_id, model=MODEL, messages=[ChatMessage("user", "hi")], params=ChatParams(),
            override_budget=override)]


@pytest_asyncio.fixture
async def usage(tmp_path: Path) -> AsyncIterator[UsageStore]:
    store = UsageStore(tmp_path / "usage.sqlite3")
    await store.open()
    yield store
    await store.close()


async def _world(engine, server, usage, **kwargs) -> World:
    secrets = SecretStore()
    world = World(engine, server, secrets, usage, **kwargs)
    await secrets.set(world.a.id, KEY_A)
    await secrets.set(world.b.id, KEY_B)
    return world


def _finished(events) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


@pytest.mark.asyncio
async def test_failover_on_429_cools_the_account_down_and_the_second_answers(engine, server, usage):
    world = await _world(engine, server, usage)
    server.behaviour[KEY_A] = "429"
    events = await world.ask(world.pool.id)
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert len(failed) == 1 and failed[0].account_id == world.a.id
    assert isinstance(failed[0].error, RateLimited) and failed[0].error.retry_after == 7
    finished = _finished(events)
    assert (finished.metrics.account_id, finished.metrics.retries) == (world.b.id, 1)
    assert "via Claude, personal after 1 retry" in finished.metrics.summary()
    assert 6 < world.states.cooling_for(world.a.id) <= 7
    # While A cools down, the next request goes straight to B.
    second = _finished(await world.ask(world.pool.id))
    assert second.metrics.account_id == world.b.id and second.metrics.retries == 0
    assert server.counts[KEY_A] == 1 and server.counts[KEY_B] == 2
    # Both attempts of the first request are in the usage log, each under its own account.
    statuses = sorted((r.account_id, r.status) for r in await usage.records(limit=10))
    assert statuses == sorted([(world.a.id, "failed"), (world.b.id, "ok"), (world.b.id, "ok")])


@pytest.mark.asyncio
async def test_529_overloaded_moves_on(engine, server, usage):
    world = await _world(engine, server, usage)
    server.behaviour[KEY_A] = "529"
    events = await world.ask(world.pool.id)
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert isinstance(failed[0].error, ServerError)
    assert _finished(events).metrics.account_id == world.b.id


@pytest.mark.asyncio
async def test_401_marks_the_account_broken_until_its_key_is_fixed(engine, server, usage):
    world = await _world(engine, server, usage)
    server.behaviour[KEY_A] = "401"
    events = await world.ask(world.pool.id)
    assert isinstance([e for e in events if isinstance(e, AttemptFailed)][0].error, AuthFailed)
    assert world.states.health(world.a.id).broken
    await world.ask(world.pool.id)
    assert server.counts[KEY_A] == 1  # skipped while broken
    world.states.clear(world.a.id)  # what saving a new key does
    server.behaviour[KEY_A] = "ok"
    assert _finished(await world.ask(world.pool.id)).metrics.account_id == world.a.id


@pytest.mark.asyncio
async def test_round_robin_spreads_the_load(engine, server, usage):
    world = await _world(engine, server, usage, strategy=Strategy.ROUND_ROBIN)
    answered = [_finished(await world.ask(world.pool.id)).metrics.account_id for _ in range(4)]
    assert answered == [world.a.id, world.b.id, world.a.id, world.b.id]
    assert server.counts[KEY_A] == 2 and server.counts[KEY_B] == 2


@pytest.mark.asyncio
async def test_a_stream_that_already_produced_text_is_not_restarted_elsewhere(engine, server, usage):
    world = await _world(engine, server, usage)
    server.behaviour[KEY_A] = "cut-after-text"
    events = await world.ask(world.pool.id)
    assert any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, Unreachable)
    assert not any(isinstance(e, AttemptFailed) for e in events)
    assert server.counts.get(KEY_B, 0) == 0


@pytest.mark.asyncio
async def test_every_account_unavailable_says_when_to_come_back(engine, server, usage):
    world = await _world(engine, server, usage)
    server.behaviour[KEY_A] = server.behaviour[KEY_B] = "429"
    events = await world.ask(world.pool.id)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RateLimited)
    again = await world.ask(world.pool.id)
    assert isinstance(again[-1], Failed)
    assert "No account in pool “Claude pool” can answer right now." in again[-1].error.message
    assert "Try again in" in again[-1].error.action
    assert server.counts[KEY_A] == 1 and server.counts[KEY_B] == 1


@pytest.mark.asyncio
async def test_budget_warns_at_80_percent_and_refuses_at_100_unless_overridden(engine, server, usage):
    world = await _world(engine, server, usage, daily_budget_tokens=100)
    import time

    def spent(tokens: int) -> UsageRecord:
        return UsageRecord(at=time.time(), account_id=world.a.id, model=MODEL, prompt_tokens=tokens,
                           completion_tokens=0, cost_usd=None, latency_s=1.0, ttft_s=0.1, status="ok",
                           error_kind="")

    await usage.record(spent(85))
    events = await world.ask(world.a.id)
    assert any(isinstance(e, Notice) and "85%" in e.text for e in events)
    assert isinstance(events[-1], Finished)
    await usage.record(spent(50))
    refused = await world.ask(world.a.id)
    assert isinstance(refused[-1], Failed) and isinstance(refused[-1].error, BudgetExceeded)
    count = server.counts[KEY_A]
    assert isinstance((await world.ask(world.a.id, override=True))[-1], Finished)
    assert server.counts[KEY_A] == count + 1
    # In a pool, an account over budget is skipped, not failed.
    assert _finished(await world.ask(world.pool.id)).metrics.account_id == world.b.id


@pytest.mark.asyncio
async def test_rate_limit_headers_and_organisation_are_kept_per_account(engine, server, usage):
    world = await _world(engine, server, usage)
    await world.ask(world.a.id)
    health = world.states.health(world.a.id)
    assert health.rate_limits is not None
    assert health.rate_limits.limits["requests"].remaining is not None
    assert health.rate_limits.organization_id == organization_id(KEY_A)
    assert "requests" in world.states.status_text(world.a.id)
