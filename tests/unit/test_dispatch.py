"""Pools and budgets through the real Dispatcher, LLMService and LiteLLM's Anthropic adapter,
against the strict loopback Anthropic server (two keys = two accounts on one provider); and a chat
meeting a llama-server of our own (the real binary and Gemma GGUF) that restarts on another model."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import (
    AttemptFailed,
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    Notice,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.errors import AuthFailed, RateLimited, ServerError, Unreachable
from desktop_app.domain.llamacpp import (
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    ServerStartFailed,
    builtin_template_args,
)
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.settings import Settings
from desktop_app.domain.usage import BudgetExceeded, UsageRecord
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_managed import ManagedServer
from tests.servers.anthropic_fault import AnthropicServer, organization_id
from tests.servers.llama import real_artifacts
from tests.unit.sqlite_stores import store_fixtures

KEY_A, KEY_B = "sk-ant-test-a", "sk-ant-test-b"
MODEL = "claude-sonnet-4-5"


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


class World:
    def __init__(self, engine, server, secrets, usage, strategy=Strategy.FAILOVER, **budgets):
        self.a = Account(provider_id="anthropic", label="Claude, work", base_url=server.base_url, **budgets)
        self.b = Account(provider_id="anthropic", label="Claude, personal", base_url=server.base_url)
        self.pool = Pool(
            label="Claude pool", provider_id="anthropic", account_ids=(self.a.id, self.b.id), strategy=strategy
        )
        self.settings = Settings(accounts=[self.a, self.b], pools=[self.pool])
        self.states = AccountStates()
        self.usage = usage
        self.dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=self.states,
            settings=lambda: self.settings,
            usage=usage,
            timeout_s=lambda: 10.0,
        )

    async def ask(self, target_id: str, override: bool = False) -> list:
        return [
            event
            async for event in self.dispatcher.stream(
                target_id=target_id,
                model=MODEL,
                messages=[ChatMessage("user", "hi")],
                params=ChatParams(),
                override_budget=override,
            )
        ]


db_path, usage = store_fixtures(UsageStore, "usage.sqlite3", name="usage")


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
    assert isinstance(next(e for e in events if isinstance(e, AttemptFailed)).error, AuthFailed)
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
        return UsageRecord(
            at=time.time(),
            account_id=world.a.id,
            model=MODEL,
            prompt_tokens=tokens,
            completion_tokens=0,
            cost_usd=None,
            latency_s=1.0,
            ttft_s=0.1,
            status="ok",
            error_kind="",
        )

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


# --- a llama-server of our own that restarts on another model ---------------------------------------


class LocalGemma:
    """A real llama-server run through LlamaCppService as the llama.cpp pane runs it, plus a second
    name for its GGUF to switch to."""

    def __init__(self, service: LlamaCppService, server: ManagedServer, other: Path) -> None:
        self.service, self.server, self.other = service, server, other

    @property
    def host(self) -> str:
        return self.server.url.removeprefix("http://")


@contextlib.asynccontextmanager
async def local_gemma(tmp_path: Path, **spec_fields: Any) -> AsyncIterator[LocalGemma]:
    binary, gguf = real_artifacts()
    other = tmp_path / "gemma-b.gguf"
    os.symlink(gguf, other)
    home = tmp_path / "llama-home"  # the server must neither read nor write the user's caches
    home.mkdir()
    spec = ManagedServerSpec(
        model=gguf,
        binary=str(binary),
        ctx=2048,
        threads=2,
        alias="gemma",
        extra_args=builtin_template_args("gemma"),
        env={"HOME": str(home), "LLAMA_CACHE": str(home / "cache")},
        **spec_fields,
    )
    async with httpx.AsyncClient() as http:
        service = LlamaCppService(http)
        server = service.managed(spec)
        await server.start()
        try:
            yield LocalGemma(service, server, other)
        finally:
            await server.stop()


@pytest_asyncio.fixture
async def gemma(tmp_path: Path) -> AsyncIterator[LocalGemma]:
    async with local_gemma(tmp_path) as local:
        yield local


async def begin_switch(
    server: ManagedServer, model: Path, until: ManagedStatus = ManagedStatus.STOPPED
) -> asyncio.Task[ManagedState]:
    """Begin switching `server` to `model`; return once it announces `until` (the restart is under way)."""
    reached = asyncio.Event()
    remove = server.add_state_listener(lambda state: state.status is until and reached.set())
    switch = asyncio.ensure_future(server.switch_model(model))
    try:
        await asyncio.wait_for(reached.wait(), 60.0)
    finally:
        remove()
    return switch


class ChatDuringRestart(LLMService):
    """The real LLMService; a model switch of the server begins just before the first request goes out
    (after the dispatcher looked and saw none), so the request meets the restart: the port is closed
    or the new process answers 503. `after_text`: begin it once the first text has come instead.
    `hold_failure`: hand the request's failure over only once the restart is over."""

    def __init__(
        self,
        engine: LiteLLMEngine,
        gemma: LocalGemma,
        *,
        to: Path | None = None,
        after_text: bool = False,
        hold_failure: bool = False,
    ) -> None:
        super().__init__(engine=engine)
        self.gemma, self.to = gemma, to or gemma.other
        self.after_text, self.hold_failure = after_text, hold_failure
        self.switch: asyncio.Task[ManagedState] | None = None
        self.outcomes: list[Finished | Failed] = []  # how each request to the server ended

    async def stream_chat(self, **request: Any) -> AsyncIterator[StreamEvent]:
        if self.switch is None and not self.after_text:
            self.switch = await begin_switch(self.gemma.server, self.to, until=ManagedStatus.STARTING)
        async with contextlib.aclosing(super().stream_chat(**request)) as events:
            async for event in events:
                if isinstance(event, TextDelta) and self.switch is None:
                    self.switch = await begin_switch(self.gemma.server, self.to)
                if isinstance(event, (Finished, Failed)):
                    self.outcomes.append(event)
                if isinstance(event, Failed) and self.hold_failure:
                    assert self.switch is not None
                    await asyncio.wait({self.switch})
                yield event


class LocalWorld:
    def __init__(self, llm: LLMService, gemma: LocalGemma, usage: UsageStore, base_url: str = "") -> None:
        self.account = Account(
            provider_id="llamacpp", label="llama.cpp here", base_url=base_url or f"{gemma.server.url}/v1"
        )
        self.settings = Settings(accounts=[self.account])
        self.dispatcher = Dispatcher(
            llm=llm,
            secrets=SecretStore(),
            states=AccountStates(),
            settings=lambda: self.settings,
            usage=usage,
            timeout_s=lambda: 30.0,
            local_servers=gemma.service,
        )

    async def ask(self, prompt: str = "Say hello.", max_tokens: int = 8) -> list:
        return [
            event
            async for event in self.dispatcher.stream(
                target_id=self.account.id,
                model="gemma",
                messages=[ChatMessage("user", prompt)],
                params=ChatParams(max_tokens=max_tokens, temperature=0),
            )
        ]


def _restarting(gemma: LocalGemma) -> Notice:
    return Notice(f"llama-server at {gemma.host} is restarting with another model; the reply starts when it is ready.")


async def _statuses(usage: UsageStore) -> list[str]:
    return [record.status for record in await usage.records()]


@pytest.mark.asyncio
async def test_a_chat_sent_while_our_llama_server_switches_models_waits_for_it(engine, gemma, usage):
    world = LocalWorld(LLMService(engine=engine), gemma, usage)
    switch = await begin_switch(gemma.server, gemma.other)
    assert gemma.service.restarting(world.account.effective_base_url)
    events = await world.ask()
    assert events[0] == _restarting(gemma)
    assert _finished(events).metrics.completion_tokens == 8
    assert not any(isinstance(e, (Failed, AttemptFailed)) for e in events)
    assert (await switch).status is ManagedStatus.RUNNING and gemma.server.spec.model == gemma.other
    assert await _statuses(usage) == ["ok"]


@pytest.mark.asyncio
async def test_a_server_of_ours_bound_to_every_interface_is_waited_for_at_its_loopback_address(engine, tmp_path, usage):
    async with local_gemma(tmp_path, host="0.0.0.0") as gemma:
        port = httpx.URL(gemma.server.url).port
        world = LocalWorld(LLMService(engine=engine), gemma, usage, base_url=f"http://127.0.0.1:{port}/v1")
        switch = await begin_switch(gemma.server, gemma.other)
        assert gemma.service.restarting(world.account.effective_base_url)
        events = await world.ask()
        assert events[0] == Notice(
            f"llama-server at 127.0.0.1:{port} is restarting with another model; the reply starts when it is ready."
        )
        assert _finished(events).metrics.completion_tokens == 8
        assert not any(isinstance(e, (Failed, AttemptFailed)) for e in events)
        assert (await switch).status is ManagedStatus.RUNNING
        assert await _statuses(usage) == ["ok"]


@pytest.mark.asyncio
async def test_a_request_a_restart_cuts_short_is_made_again_once_the_server_is_back(engine, gemma, usage):
    llm = ChatDuringRestart(engine, gemma)
    world = LocalWorld(llm, gemma, usage)
    events = await world.ask()
    first, second = llm.outcomes
    assert isinstance(first, Failed) and isinstance(first.error, (Unreachable, ServerError)), first
    assert isinstance(second, Finished)
    assert _restarting(gemma) in events
    assert _finished(events).metrics.completion_tokens == 8 and _finished(events).metrics.retries == 0
    assert not any(isinstance(e, (Failed, AttemptFailed)) for e in events)
    assert await _statuses(usage) == ["ok"]  # the superseded attempt is not a failure of the account
    assert llm.switch is not None and (await llm.switch).status is ManagedStatus.RUNNING


@pytest.mark.asyncio
async def test_a_restart_that_ended_before_the_failure_came_back_is_retried_too(engine, gemma, usage):
    llm = ChatDuringRestart(engine, gemma, hold_failure=True)
    world = LocalWorld(llm, gemma, usage)
    events = await world.ask()
    assert [type(o) for o in llm.outcomes] == [Failed, Finished]
    assert not any(isinstance(e, Notice) for e in events)  # nothing to wait for any more
    assert _finished(events).metrics.completion_tokens == 8
    assert await _statuses(usage) == ["ok"]


@pytest.mark.asyncio
async def test_a_restart_that_fails_leaves_the_original_failure(engine, gemma, usage, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    llm = ChatDuringRestart(engine, gemma, to=broken)
    world = LocalWorld(llm, gemma, usage)
    events = await world.ask()
    assert len(llm.outcomes) == 1 and isinstance(llm.outcomes[0], Failed)
    assert _restarting(gemma) in events
    assert isinstance(events[-1], Failed) and events[-1].error == llm.outcomes[0].error
    assert await _statuses(usage) == ["failed"]
    assert llm.switch is not None
    with pytest.raises(ServerStartFailed):
        await llm.switch


@pytest.mark.asyncio
async def test_a_reply_a_restart_cuts_after_text_is_not_made_again(engine, gemma, usage):
    llm = ChatDuringRestart(engine, gemma, after_text=True)
    world = LocalWorld(llm, gemma, usage)
    events = await world.ask("Tell me a long story.", max_tokens=400)
    assert any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, Unreachable), events[-1]
    assert len(llm.outcomes) == 1 and not any(isinstance(e, Notice) for e in events)
    assert await _statuses(usage) == ["failed"]
    assert llm.switch is not None and (await llm.switch).status is ManagedStatus.RUNNING
