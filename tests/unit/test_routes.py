"""Routes through the real Dispatcher, LLMService and LiteLLM, against the loopback OpenAI and Anthropic
servers and a closed port: each reason to move on, no move once text came, pools inside a route, context
windows, and targets a health check found down."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, Notice
from desktop_app.domain.errors import ContextTooLong, RateLimited
from desktop_app.domain.pools import Pool
from desktop_app.domain.routes import Route, RouteTarget
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
# The context windows the route consults, as LiteLLM's map would give them for these model names.
WINDOWS = {"fault-context": 8_000, "small": 4_000, "ok": 128_000}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Along:
    """Accounts, a route over them, and a Dispatcher that sends along it."""

    def __init__(self, engine, usage, accounts: list[Account], targets: list[tuple[str, str]], pools=()) -> None:
        self.accounts = accounts
        self.route = Route(label="fast", targets=tuple(RouteTarget(target_id=t, model=m) for t, m in targets))
        self.settings = Settings(accounts=accounts, pools=list(pools), routes=[self.route])
        self.states = AccountStates()
        self.secrets = SecretStore()
        self.usage = usage

        async def window(account: Account, model: str) -> int | None:
            return WINDOWS.get(model)

        self.dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=self.secrets,
            states=self.states,
            settings=lambda: self.settings,
            usage=usage,
            timeout_s=lambda: 1.5,
            context_window=window,
        )

    async def ask(self) -> list:
        for account in self.accounts:
            if not account.provider.is_local:
                await self.secrets.set(account.id, "sk-test" if account.provider_id == "openai" else "sk-ant-test-a")
        return [
            e
            async for e in self.dispatcher.stream(
                target_id=self.route.id,
                model=self.route.label,
                messages=[ChatMessage("user", "hi")],
                params=ChatParams(),
            )
        ]


def openai(server: FaultServer, label: str) -> Account:
    return Account(provider_id="openai", label=label, base_url=server.base_url)


def moved(events) -> list[tuple[str, str]]:
    return [(e.account_label, e.error.kind) for e in events if isinstance(e, AttemptFailed)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("fault-429", "RateLimited"),
        ("fault-500", "ServerError"),
        ("delay-2500", "TimedOut"),
        ("fault-401", "AuthFailed"),
        ("fault-403", "PermissionDenied"),
    ],
)
async def test_a_target_that_fails_before_any_text_moves_the_request_on(engine, server, usage, model, kind) -> None:
    first, second = openai(server, "First"), openai(server, "Second")
    along = Along(engine, usage, [first, second], [(first.id, model), (second.id, "ok")])

    events = await along.ask()

    assert moved(events) == [("First", kind)]
    [attempt] = [e for e in events if isinstance(e, AttemptFailed)]
    assert attempt.next_step == "Moving on along route “fast”."
    done = events[-1]
    assert isinstance(done, Finished), done
    assert done.metrics.account_label == "Second" and "via Second after 1 move" in done.metrics.summary()
    records = sorted(await usage.records(), key=lambda r: r.at)
    assert [(r.account_id, r.status, r.error_kind, r.pool_id) for r in records] == [
        (first.id, "failed", kind, along.route.id),
        (second.id, "ok", "", along.route.id),
    ]
    if kind in ("AuthFailed", "PermissionDenied"):  # the rejected key is marked, as a pool marks it
        assert along.states.health(first.id).broken
    if kind == "RateLimited":
        assert along.states.cooling_for(first.id) > 0


@pytest.mark.asyncio
async def test_an_unreachable_local_server_moves_the_request_to_the_cloud(engine, server, usage) -> None:
    local = Account(provider_id="llamacpp", label="Local", base_url=f"http://127.0.0.1:{closed_port()}")
    cloud = openai(server, "Cloud")
    along = Along(engine, usage, [local, cloud], [(local.id, "gemma"), (cloud.id, "ok")])

    events = await along.ask()

    assert moved(events) == [("Local", "Unreachable")]
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_label == "Cloud"


@pytest.mark.asyncio
async def test_no_move_once_text_has_arrived(engine, server, usage) -> None:
    first, second = openai(server, "First"), openai(server, "Second")
    along = Along(engine, usage, [first, second], [(first.id, "fault-cut"), (second.id, "ok")])

    events = await along.ask()

    assert moved(events) == [] and isinstance(events[-1], Failed)
    assert [r.body["model"] for r in server.requests] == ["fault-cut"]  # the second target was never asked


@pytest.mark.asyncio
async def test_a_context_too_long_moves_to_a_larger_window_skipping_smaller_ones(engine, server, usage) -> None:
    a, b, c = openai(server, "A"), openai(server, "B"), openai(server, "C")
    along = Along(engine, usage, [a, b, c], [(a.id, "fault-context"), (b.id, "small"), (c.id, "ok")])

    events = await along.ask()

    assert moved(events) == [("A", "ContextTooLong")]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == ["small on “B” is skipped: it takes 4,000 tokens, no more than the model that refused."]
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_label == "C"
    assert [r.body["model"] for r in server.requests] == ["fault-context", "ok"]


@pytest.mark.asyncio
async def test_a_pool_in_a_route_runs_its_own_failover_first(engine, server, usage) -> None:
    with AnthropicServer() as anthropic:
        anthropic.behaviour["sk-ant-test-a"] = "429"
        work = Account(provider_id="anthropic", label="Work", base_url=anthropic.base_url)
        home = Account(provider_id="anthropic", label="Home", base_url=anthropic.base_url)
        pool = Pool(label="Claude", provider_id="anthropic", account_ids=(work.id, home.id))
        cloud = openai(server, "OpenAI")
        along = Along(
            engine, usage, [work, home, cloud], [(pool.id, "claude-sonnet-4-5"), (cloud.id, "ok")], pools=[pool]
        )
        events = await along.ask()

    assert moved(events) == [("Work", "RateLimited"), ("Home", "RateLimited")]
    done = events[-1]
    assert isinstance(done, Finished) and done.metrics.account_label == "OpenAI"
    assert "via OpenAI after 2 moves" in done.metrics.summary()
    records = sorted(await usage.records(), key=lambda r: r.at)
    assert [(r.account_id, r.status, r.pool_id) for r in records] == [
        (work.id, "failed", pool.id),
        (home.id, "failed", pool.id),
        (cloud.id, "ok", along.route.id),
    ]


@pytest.mark.asyncio
async def test_a_target_found_down_is_skipped_and_the_notice_says_so(engine, server, usage) -> None:
    first, second = openai(server, "First"), openai(server, "Second")
    along = Along(engine, usage, [first, second], [(first.id, "ok"), (second.id, "ok")])
    along.states.set_down(first.id, "it could not be reached")

    events = await along.ask()

    assert [e.text for e in events if isinstance(e, Notice)] == [
        "ok on “First” is skipped: the last health check found it down (it could not be reached)."
    ]
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_label == "Second"
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_when_every_target_is_down_they_are_tried_anyway(engine, server, usage) -> None:
    first, second = openai(server, "First"), openai(server, "Second")
    along = Along(engine, usage, [first, second], [(first.id, "ok"), (second.id, "ok")])
    along.states.set_down(first.id, "it could not be reached")
    along.states.set_down(second.id, "it could not be reached")

    events = await along.ask()

    assert not [e for e in events if isinstance(e, Notice)]
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_label == "First"


@pytest.mark.asyncio
async def test_when_no_target_answers_the_failure_names_the_route_and_the_last_error(engine, server, usage) -> None:
    first, second = openai(server, "First"), openai(server, "Second")
    along = Along(engine, usage, [first, second], [(first.id, "fault-500"), (second.id, "fault-429")])

    events = await along.ask()

    assert moved(events) == [("First", "ServerError")]
    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, RateLimited)


@pytest.mark.asyncio
async def test_a_context_too_long_with_nothing_larger_left_fails_saying_so(engine, server, usage) -> None:
    a, b = openai(server, "A"), openai(server, "B")
    along = Along(engine, usage, [a, b], [(a.id, "fault-context"), (b.id, "small")])

    events = await along.ask()

    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, ContextTooLong)
    assert failed.error.message.startswith("No target of route “fast” could answer. small on “B” is skipped")


@pytest.mark.asyncio
async def test_a_pool_skips_an_account_found_down_and_says_so(engine, usage) -> None:
    with AnthropicServer() as anthropic:
        work = Account(provider_id="anthropic", label="Work", base_url=anthropic.base_url)
        home = Account(provider_id="anthropic", label="Home", base_url=anthropic.base_url)
        pool = Pool(label="Claude", provider_id="anthropic", account_ids=(work.id, home.id))
        along = Along(engine, usage, [work, home], [(pool.id, "claude-sonnet-4-5")], pools=[pool])
        along.states.set_down(work.id, "it could not be reached")
        await along.ask()  # keys stored
        events = [
            e
            async for e in along.dispatcher.stream(
                target_id=pool.id, model="claude-sonnet-4-5", messages=[ChatMessage("user", "hi")], params=ChatParams()
            )
        ]

    assert [e.text for e in events if isinstance(e, Notice)] == [
        "“Work” is skipped: the last health check found it down (it could not be reached)."
    ]
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_label == "Home"


def test_a_routes_line_names_its_targets_in_the_order_they_are_tried() -> None:
    labels = {"acc-laptop": "Laptop", "pool:claude": "Claude pool"}
    route = Route(
        label="private-first",
        targets=(
            RouteTarget(target_id="acc-laptop", model="gemma"),
            RouteTarget(target_id="pool:claude", model="claude-sonnet-4-5"),
            RouteTarget(target_id="acc-gone", model="gpt-4o"),
        ),
    )
    assert route.summary(lambda target_id: labels.get(target_id, "")) == (
        "Route: Laptop (gemma) → Claude pool (claude-sonnet-4-5) → a removed account (gpt-4o);"
        " the first that answers replies"
    )
    one = Route(label="fast", targets=(RouteTarget(target_id="acc-laptop", model="gemma"),))
    assert one.summary(labels.__getitem__) == "Route: Laptop (gemma)"
    assert Route(label="empty").summary(labels.__getitem__) == "Route with no targets: add one in Accounts > Routes."
