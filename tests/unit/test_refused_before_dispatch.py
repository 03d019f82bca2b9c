"""A request that cannot be sent is refused before dispatch: nothing stored, recorded or sent.

The real ChatService, Dispatcher, LLMService (LiteLLM on its engine thread), conversation and usage
stores and in-memory keyring, against the loopback fault server; `server.requests` tells whether
anything reached it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatMessage, ChatParams, Failed, Finished, ResponseFormat, StreamEvent
from desktop_app.domain.conversations import Conversation
from desktop_app.domain.errors import BadRequest, DomainError, ModelNotFound, NoKey
from desktop_app.domain.pools import Pool
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.memory_keyring import MemoryKeyring
from tests.servers.openai_fault import FaultServer
from tests.unit.sqlite_stores import store_fixtures

KEY = "sk-test"
BAD_SCHEMA = ChatParams(response_format=ResponseFormat.JSON_SCHEMA, json_schema='{"type": ')

db_path, store = store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest_asyncio.fixture
async def usage(tmp_path) -> AsyncIterator[UsageStore]:
    usage = UsageStore(tmp_path / "data" / "usage.sqlite3")
    await usage.open()
    yield usage
    await usage.close()


class World:
    """Accounts on the fault server: "Fault lab" (no key needed, has one) and "Cloud" (an OpenAI
    account, which needs a key, without one), and settings a test may change under the services."""

    def __init__(
        self,
        engine: LiteLLMEngine,
        server: FaultServer,
        secrets: SecretStore,
        store: ConversationStore,
        usage: UsageStore,
    ) -> None:
        self.lab = Account(provider_id="openai_compatible", label="Fault lab", base_url=server.base_url)
        self.cloud = Account(provider_id="openai", label="Cloud", base_url=server.base_url)
        self.settings = Settings(accounts=[self.lab, self.cloud])
        self.secrets, self.store, self.usage = secrets, store, usage
        self.dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=AccountStates(),
            settings=lambda: self.settings,
            usage=usage,
            timeout_s=lambda: 30.0,
        )
        self.chat = ChatService(dispatcher=self.dispatcher, store=store)

    def disable(self, account: Account) -> None:
        self.settings = self.settings.model_copy(
            update={
                "accounts": [
                    a.model_copy(update={"enabled": False}) if a.id == account.id else a for a in self.settings.accounts
                ]
            }
        )

    async def conversation(self, account_id: str, model: str, params: ChatParams | None = None) -> Conversation:
        return await self.store.create_conversation(
            title=DEFAULT_TITLE, account_id=account_id, model=model, params=params or ChatParams()
        )


@pytest_asyncio.fixture
async def world(engine, server, store, usage) -> AsyncIterator[World]:
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    world = World(engine, server, secrets, store, usage)
    await secrets.set(world.lab.id, KEY)
    yield world
    await secrets.close()


async def refused(world: World, conversation: Conversation, text: str) -> DomainError:
    """Send `text` through ChatService.reply; the refusal it raises before anything happens."""
    with pytest.raises(DomainError) as raised:
        await anext(world.chat.reply(conversation, text))  # not even a first event
    return raised.value


async def assert_nothing_happened(world: World, server: FaultServer, conversation: Conversation) -> None:
    assert await world.store.messages(conversation.id) == []  # no user message, no assistant message
    assert await world.usage.records() == []
    assert server.requests == []
    stored = await world.store.get_conversation(conversation.id)
    assert stored is not None and stored.title == DEFAULT_TITLE  # not named after a message never sent


@pytest.mark.parametrize(
    ("case", "kind", "sentence"),
    [
        ("empty message", BadRequest, "There is nothing to send: the message is empty. Type a message, then send."),
        (
            "no model",
            ModelNotFound,
            "No model is selected for this conversation. Pick a model in the model picker, then send again.",
        ),
        (
            "unknown account",
            ModelNotFound,
            "No model is selected for this conversation. Pick a model in the model picker, then send again.",
        ),
        (
            "disabled account",
            ModelNotFound,
            "Account “Fault lab” is disabled. Enable it in Accounts, or pick another model.",
        ),
        (
            "invalid schema",
            BadRequest,
            "The JSON schema is not valid JSON (Expecting value at line 1). "
            "Fix the JSON schema in the parameters panel.",
        ),
        ("no key", NoKey, "Account “Cloud” has no key. Open Accounts and add the key."),
        (
            "key with a line break",
            BadRequest,
            "Nothing was sent to account “Fault lab”: the key must be one line "
            "without spaces; paste it again. Open Accounts, correct it and save the "
            "account again.",
        ),
    ],
)
@pytest.mark.asyncio
async def test_a_request_that_cannot_be_sent_is_refused_with_its_sentence_and_nothing_happens(
    world: World, server: FaultServer, case: str, kind: type[DomainError], sentence: str
) -> None:
    text, account_id, model, params = "Anyone there?", world.lab.id, "ok", ChatParams()
    if case == "empty message":
        text = "  \n "
    elif case == "no model":
        model = ""
    elif case == "unknown account":
        account_id = "gone"
    elif case == "disabled account":
        world.disable(world.lab)
    elif case == "invalid schema":
        params = BAD_SCHEMA
    elif case == "no key":
        account_id = world.cloud.id
    elif case == "key with a line break":
        await world.secrets.set(world.lab.id, "sk-te\nst")
    conversation = await world.conversation(account_id, model, params)

    # What the pane asks at Send, and what the service raises if it is sent anyway.
    asked = await world.chat.refusal(target_id=account_id, model=model, params=params, text=text)
    error = await refused(world, conversation, text)

    assert type(error) is kind and type(asked) is kind
    assert f"{error.message} {error.action}" == sentence
    assert (asked.message, asked.action) == (error.message, error.action)
    await assert_nothing_happened(world, server, conversation)


@pytest.mark.asyncio
async def test_a_request_that_can_be_sent_is_not_refused(world: World, server: FaultServer) -> None:
    conversation = await world.conversation(world.lab.id, "ok")
    assert await world.chat.refusal(target_id=world.lab.id, model="ok", params=ChatParams(), text="Hi") is None
    events = [event async for event in world.chat.reply(conversation, "Hi")]
    assert isinstance(events[-1], Finished)
    assert [r.status for r in await world.usage.records()] == ["ok"]
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_an_account_disabled_after_send_was_allowed_stores_no_reply_and_records_nothing(
    world: World, server: FaultServer
) -> None:
    # The pane asked at Send and stored the message; the account is disabled before the answer starts.
    conversation = await world.conversation(world.lab.id, "ok")
    assert await world.chat.refusal(target_id=world.lab.id, model="ok", params=ChatParams(), text="Hi") is None
    await world.chat.add_user_message(conversation, "Hi")
    world.disable(world.lab)

    with pytest.raises(ModelNotFound, match="is disabled"):
        await anext(world.chat.answer(conversation))

    (user,) = await world.store.messages(conversation.id)  # no assistant message beside it
    assert user.content == "Hi"
    assert await world.usage.records() == []
    assert server.requests == []


async def dispatched(world: World, target_id: str, params: ChatParams | None = None) -> list[StreamEvent]:
    return [
        event
        async for event in world.dispatcher.stream(
            target_id=target_id, model="ok", messages=[ChatMessage("user", "hi")], params=params or ChatParams()
        )
    ]


@pytest.mark.parametrize("case", ["no key", "invalid schema"])
@pytest.mark.asyncio
async def test_the_dispatcher_records_no_failure_for_an_account_it_never_contacted(
    world: World, server: FaultServer, case: str
) -> None:
    # Reached directly (a caller that did not ask first): it still says why, and records nothing.
    target, params = (world.cloud.id, ChatParams()) if case == "no key" else (world.lab.id, BAD_SCHEMA)
    events = await dispatched(world, target, params)

    assert len(events) == 1 and isinstance(events[0], Failed)
    assert isinstance(events[0].error, NoKey if case == "no key" else BadRequest)
    assert await world.usage.records() == []
    assert server.requests == []


@pytest.mark.asyncio
async def test_a_pool_skips_a_member_without_a_key_and_records_only_the_one_that_answered(
    world: World, server: FaultServer
) -> None:
    pool = Pool(label="Mixed", provider_id="openai", account_ids=(world.cloud.id, world.lab.id))
    world.settings = world.settings.model_copy(update={"pools": [pool]})

    assert await world.chat.refusal(target_id=pool.id, model="ok", params=ChatParams(), text="hi") is None
    events = await dispatched(world, pool.id)

    finished = events[-1]
    assert isinstance(finished, Finished) and finished.metrics.account_id == world.lab.id
    assert [(r.account_id, r.status) for r in await world.usage.records()] == [(world.lab.id, "ok")]
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_pool_none_of_whose_members_can_be_sent_to_is_refused(world: World, server: FaultServer) -> None:
    other = Account(provider_id="openai", label="Cloud two", base_url=server.base_url)
    pool = Pool(label="Keyless", provider_id="openai", account_ids=(world.cloud.id, other.id))
    world.settings = world.settings.model_copy(update={"accounts": [*world.settings.accounts, other], "pools": [pool]})
    conversation = await world.conversation(pool.id, "ok")

    error = await refused(world, conversation, "hi")

    assert isinstance(error, NoKey)
    assert error.message == (
        "No account in pool “Keyless” can be sent this request: Account “Cloud” has no key. "
        "Account “Cloud two” has no key."
    )
    assert error.action == "Open Accounts and add the key."
    await assert_nothing_happened(world, server, conversation)


class CountingKeyring(MemoryKeyring):
    """The in-memory keyring, counting reads: each stands for a D-Bus round trip in the real one."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return super().get_password(service, username)


@pytest.mark.asyncio
async def test_checking_at_send_costs_no_extra_keyring_read(
    engine: LiteLLMEngine, server: FaultServer, store: ConversationStore, usage: UsageStore
) -> None:
    keyring = CountingKeyring()
    secrets = SecretStore(backend=keyring)
    world = World(engine, server, secrets, store, usage)
    await secrets.set(world.lab.id, KEY)
    conversation = await world.conversation(world.lab.id, "ok")
    before = keyring.reads  # the keyring's probe at start-up reads too

    # The pane's check at Send, then the reply (which checks again before it stores anything).
    assert await world.chat.refusal(target_id=world.lab.id, model="ok", params=ChatParams(), text="Hi") is None
    events = [event async for event in world.chat.reply(conversation, "Hi")]

    assert isinstance(events[-1], Finished)
    assert keyring.reads - before == 1  # read once, for the check; the request used what it read
    # A key changed in the app is never sent stale: the next request reads the keyring again.
    await secrets.set(world.lab.id, "sk-wrong")
    events = [event async for event in world.chat.reply(conversation, "Again")]
    assert isinstance(events[-1], Failed) and keyring.reads - before == 2
    await secrets.close()
