"""Attached files on the wire: a turn with text, an image, a text file and a PDF goes through the real
ChatService, Dispatcher, LLMService and LiteLLM to each provider's strict loopback server, which must
receive the files in its own format, in the order attached, with the bytes that were stored."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.attachments import Attachment, AttachmentRefused, fenced, image_limits
from desktop_app.domain.chat import ChatParams, Finished
from desktop_app.domain.conversations import Conversation
from desktop_app.domain.models import ModelInfo
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fault import FaultServer
from tests.unit.test_attachments import minimal_pdf, png

TEXT = "What do these say?"
NOTES = "# Notes\nThe ``` fence inside must not close the block.\n"
PDF_TEXT = "Quarterly figures"


@dataclass
class Provider:
    """One provider's loopback server and the account, key and model that reach it."""

    name: str
    server: Callable[[], AbstractContextManager[Any]]
    account: Callable[[Any], Account]
    key: str
    model: str
    chat_path: str


PROVIDERS = {
    "openai": Provider(
        "openai",
        FaultServer,
        lambda s: Account(provider_id="openai", label="OpenAI", base_url=s.base_url),
        "sk-test",
        "gpt-4o",
        "/v1/chat/completions",
    ),
    # llama-server's provider: an OpenAI-compatible local server, which takes no PDF as a document.
    "llamacpp": Provider(
        "llamacpp",
        FaultServer,
        lambda s: Account(provider_id="llamacpp", label="Local llama", base_url=s.base_url),
        "sk-test",
        "gemma",
        "/v1/chat/completions",
    ),
    "anthropic": Provider(
        "anthropic",
        AnthropicServer,
        lambda s: Account(provider_id="anthropic", label="Claude", base_url=s.base_url),
        "sk-ant-test-a",
        "claude-sonnet-4-5",
        "/v1/messages",
    ),
    "ollama": Provider(
        "ollama",
        lambda: OllamaServer(installed=("gemma3:4b",)),  # a model with Ollama's "vision" capability
        lambda s: Account(provider_id="ollama", label="Local Ollama", base_url=s.base_url),
        "",
        "gemma3:4b",
        "/api/chat",
    ),
}


@dataclass
class Stack:
    server: Any
    account: Account
    provider: Provider
    chat: ChatService
    store: ConversationStore
    files: AttachmentStore

    async def attach(self) -> tuple[tuple[Attachment, ...], dict[str, bytes]]:
        """An image, a text file and a PDF, attached as the chat pane does; their stored bytes by name."""
        limits = image_limits(self.account.provider_id)
        attached = (
            await self.files.add_bytes(png(30, 20, alpha=False), "dot.png", limits),
            await self.files.add_bytes(NOTES.encode(), "notes.md", limits),
            await self.files.add_bytes(minimal_pdf(PDF_TEXT), "report.pdf", limits),
        )
        return attached, {a.name: self.files.path_of(a).read_bytes() for a in attached}

    async def conversation(self) -> Conversation:
        return await self.store.create_conversation(
            title=DEFAULT_TITLE, account_id=self.account.id, model=self.provider.model, params=ChatParams()
        )

    def bodies(self) -> list[dict[str, Any]]:
        """The chat requests the server received, in order."""
        return [r.json() for r in self.server.requests if r.path == self.provider.chat_path]


@pytest.fixture(scope="module")
def engine() -> Iterator[LiteLLMEngine]:
    engine = LiteLLMEngine()
    engine.start()
    yield engine
    engine.stop()


def build_stack(
    engine: LiteLLMEngine,
    server: Any,
    provider: Provider,
    secrets: SecretStore,
    store: ConversationStore,
    root: Path,
    model_info: Callable[[str, str], Any] | None = None,
) -> Stack:
    account = provider.account(server)
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: Settings(accounts=[account]),
        timeout_s=lambda: 30.0,
    )
    files = AttachmentStore(root / "attachments")
    chat = ChatService(dispatcher=dispatcher, store=store, attachments=files, model_info=model_info)
    return Stack(server, account, provider, chat, store, files)


@pytest_asyncio.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[SecretStore, ConversationStore]]:
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    await store.open()
    yield secrets, store
    await store.close()
    await secrets.close()


@pytest_asyncio.fixture(params=list(PROVIDERS))
async def stack(
    request: pytest.FixtureRequest,
    engine: LiteLLMEngine,
    parts: tuple[SecretStore, ConversationStore],
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    provider = PROVIDERS[request.param]
    secrets, store = parts
    with provider.server() as server:
        stack = build_stack(engine, server, provider, secrets, store, tmp_path)
        if provider.key:
            await secrets.set(stack.account.id, provider.key)
        yield stack


async def finished(events: AsyncIterator[Any]) -> list[Any]:
    out = [e async for e in events]
    assert isinstance(out[-1], Finished), out[-1]
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def expected_user_content(provider: str, stored: dict[str, bytes]) -> Any:
    """What the provider's server must receive for TEXT with dot.png, notes.md and report.pdf."""
    image, pdf = stored["dot.png"], stored["report.pdf"]
    notes = fenced("notes.md", NOTES)
    pdf_text = fenced("report.pdf (its text)", PDF_TEXT)
    if provider == "anthropic":
        return [
            {"type": "text", "text": TEXT},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(image)}},
            {"type": "text", "text": notes},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)}},
        ]
    if provider == "ollama":
        # One text, a blank line between its pieces (the PDF's text read by pypdf), the image apart.
        return {"content": f"{TEXT}\n\n{notes}\n\n{pdf_text}", "images": [b64(image)]}
    last = (
        {"type": "file", "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{b64(pdf)}"}}
        if provider == "openai"
        else {"type": "text", "text": pdf_text}
    )
    return [
        {"type": "text", "text": TEXT},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(image)}"}},
        {"type": "text", "text": notes},
        last,
    ]


def user_messages(body: dict[str, Any]) -> list[Any]:
    """The user messages of a request body: content, or (Ollama) content and images."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    if "images" in users[0]:
        return [{"content": m["content"], "images": m["images"]} for m in users]
    return [m["content"] for m in users]


@pytest.mark.asyncio
async def test_each_provider_receives_the_attached_files_in_its_own_format(stack: Stack) -> None:
    attached, stored = await stack.attach()
    assert stored["dot.png"].startswith(b"\x89PNG") and stored["report.pdf"].startswith(b"%PDF-")
    conversation = await stack.conversation()

    await finished(stack.chat.reply(conversation, TEXT, attachments=attached))

    [body] = stack.bodies()
    assert user_messages(body) == [expected_user_content(stack.provider.name, stored)]
    [message, _reply] = await stack.store.messages(conversation.id)
    assert message.attachments == attached


@pytest.mark.asyncio
async def test_a_follow_up_sends_the_earlier_files_again(stack: Stack) -> None:
    attached, stored = await stack.attach()
    conversation = await stack.conversation()
    await finished(stack.chat.reply(conversation, TEXT, attachments=attached))

    await finished(stack.chat.reply(conversation, "And the second page?"))

    first, second = stack.bodies()
    earlier = expected_user_content(stack.provider.name, stored)
    follow_up = user_messages(second)
    assert follow_up[0] == earlier
    assert follow_up[1] == {
        "anthropic": [{"type": "text", "text": "And the second page?"}],  # LiteLLM sends Anthropic blocks
        "ollama": {"content": "And the second page?", "images": []},
    }.get(stack.provider.name, "And the second page?")
    # The reply between them went back as the assistant's turn.
    assert [m["role"] for m in second["messages"]][-3:] == ["user", "assistant", "user"]
    assert user_messages(first) == [earlier]


@pytest.mark.asyncio
async def test_an_attached_file_gone_from_disk_is_refused_before_anything_is_stored_or_sent(
    engine: LiteLLMEngine, parts: tuple[SecretStore, ConversationStore], tmp_path: Path
) -> None:
    secrets, store = parts
    provider = PROVIDERS["openai"]
    with FaultServer() as server:
        stack = build_stack(engine, server, provider, secrets, store, tmp_path)
        await secrets.set(stack.account.id, provider.key)
        attached, _ = await stack.attach()
        conversation = await stack.conversation()
        await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
        stack.files.path_of(attached[0]).unlink()

        with pytest.raises(AttachmentRefused) as refused:
            await finished(stack.chat.reply(conversation, "Again?"))
        gone = f"The attached file dot.png is no longer in {stack.files.path_of(attached[0]).parent}."
        assert refused.value.message == gone
        # A new message whose own file went is refused the same way.
        stack.files.path_of(attached[2]).unlink()
        other = await stack.conversation()
        with pytest.raises(AttachmentRefused, match=r"report\.pdf is no longer in"):
            await finished(stack.chat.reply(other, TEXT, attachments=attached[2:]))
        # Retry asks the same of the stored history.
        with pytest.raises(AttachmentRefused, match=r"dot\.png is no longer in"):
            await finished(stack.chat.answer(conversation))

        assert len(stack.bodies()) == 1  # nothing more was sent
        assert [m.role for m in await store.messages(conversation.id)] == ["user", "assistant"]
        assert await store.messages(other.id) == []

        # Attached again (the same bytes, so the same digest), the turn goes through.
        again, _ = await stack.attach()
        assert again == attached
        await finished(stack.chat.reply(conversation, "Again?"))
        assert len(stack.bodies()) == 2


@pytest.mark.asyncio
async def test_a_branch_and_a_regenerated_reply_keep_the_attached_files(
    engine: LiteLLMEngine, parts: tuple[SecretStore, ConversationStore], tmp_path: Path
) -> None:
    secrets, store = parts
    provider = PROVIDERS["anthropic"]
    with AnthropicServer() as server:
        stack = build_stack(engine, server, provider, secrets, store, tmp_path)
        await secrets.set(stack.account.id, provider.key)
        attached, stored = await stack.attach()
        conversation = await stack.conversation()
        await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
        [question, reply] = await store.messages(conversation.id)

        branch = await store.branch(reply.id)
        [copied, _] = await store.messages(branch.id)
        assert copied.id != question.id and copied.attachments == attached
        await finished(stack.chat.reply(branch, "Go on"))

        # Regenerate: the reply goes (as Retry drops a failed one) and an answer is asked again.
        await store.delete_message(reply.id)
        await finished(stack.chat.answer(conversation))

        earlier = expected_user_content("anthropic", stored)
        [_, on_branch, regenerated] = stack.bodies()
        assert user_messages(on_branch)[0] == earlier
        assert user_messages(regenerated) == [earlier]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "refused"), [("o3-mini", True), ("gpt-4o", False), ("a-model-litellm-knows-not", False)]
)
async def test_a_model_litellm_says_cannot_see_is_refused_images_in_one_sentence(
    engine: LiteLLMEngine,
    parts: tuple[SecretStore, ConversationStore],
    tmp_path: Path,
    model: str,
    refused: bool,
) -> None:
    """LiteLLM's map says o3-mini takes no images and gpt-4o does; of a model it does not know, it
    says nothing, and the request goes (the provider answers for itself)."""
    secrets, store = parts
    provider = PROVIDERS["openai"]
    async with httpx.AsyncClient(trust_env=False) as http:
        with FaultServer() as server:
            catalog = ModelCatalog(http=http, cache_file=tmp_path / "cache" / "models.json", litellm=engine.litellm)

            async def model_info(target_id: str, name: str) -> ModelInfo:
                assert target_id == stack.account.id
                return await catalog.model_info(stack.account, name)

            stack = build_stack(engine, server, provider, secrets, store, tmp_path, model_info)
            account = stack.account
            await secrets.set(account.id, provider.key)
            attached, _ = await stack.attach()
            conversation = await store.create_conversation(
                title=DEFAULT_TITLE, account_id=account.id, model=model, params=ChatParams()
            )
            problem = await stack.chat.refusal(
                target_id=account.id, model=model, params=ChatParams(), text=TEXT, attachments=attached
            )
            if not refused:
                assert problem is None
                await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
                assert len(stack.bodies()) == 1
                return
            sentence = f"{model} on OpenAI does not take images; pick a vision model or remove the image."
            assert isinstance(problem, AttachmentRefused) and problem.message == sentence
            with pytest.raises(AttachmentRefused, match="does not take images"):
                await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
            # Without the image the same model is asked: the text file and the PDF need no eyes.
            await finished(stack.chat.reply(conversation, TEXT, attachments=attached[1:]))
            assert await stack.chat.refusal(target_id=account.id, model=model, params=ChatParams(), text="x") is None
            assert len(stack.bodies()) == 1
            assert [len(m.attachments) for m in await store.messages(conversation.id)] == [2, 0]


@pytest.mark.asyncio
async def test_a_conversation_switched_to_a_model_that_cannot_see_is_refused_before_anything_is_stored(
    engine: LiteLLMEngine, parts: tuple[SecretStore, ConversationStore], tmp_path: Path
) -> None:
    """Its earlier images go with every request: a text-only follow-up, and a regenerated reply, are
    refused too."""
    secrets, store = parts
    provider = PROVIDERS["openai"]
    async with httpx.AsyncClient(trust_env=False) as http:
        with FaultServer() as server:
            catalog = ModelCatalog(http=http, cache_file=tmp_path / "cache" / "models.json", litellm=engine.litellm)

            async def model_info(target_id: str, name: str) -> ModelInfo:
                return await catalog.model_info(stack.account, name)

            stack = build_stack(engine, server, provider, secrets, store, tmp_path, model_info)
            await secrets.set(stack.account.id, provider.key)
            attached, _ = await stack.attach()
            conversation = await stack.conversation()
            await finished(stack.chat.reply(conversation, TEXT, attachments=attached))

            await store.update_conversation_settings(
                conversation.id, account_id=stack.account.id, model="o3-mini", params=ChatParams()
            )
            conversation.model = "o3-mini"
            sentence = "o3-mini on OpenAI does not take images; pick a vision model or remove the image."
            with pytest.raises(AttachmentRefused) as follow_up:
                await finished(stack.chat.reply(conversation, "And now?"))
            with pytest.raises(AttachmentRefused) as regenerated:
                await finished(stack.chat.answer(conversation))
            assert follow_up.value.message == regenerated.value.message == sentence
            assert len(stack.bodies()) == 1
            assert [m.role for m in await store.messages(conversation.id)] == ["user", "assistant"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("model", "refused"), [("gemma3:270m", True), ("gemma3:4b", False)])
async def test_an_ollama_model_without_vision_is_refused_images_in_one_sentence(
    engine: LiteLLMEngine,
    parts: tuple[SecretStore, ConversationStore],
    tmp_path: Path,
    model: str,
    refused: bool,
) -> None:
    """LiteLLM's map knows no local model: Ollama's own `/api/show` says what it can do (its
    `capabilities`), asked through the catalog; the server is never sent an image it cannot see."""
    secrets, store = parts
    provider = PROVIDERS["ollama"]
    async with httpx.AsyncClient(trust_env=False) as http:
        with OllamaServer(installed=("gemma3:270m", "gemma3:4b")) as server:
            catalog = ModelCatalog(http=http, cache_file=tmp_path / "cache" / "models.json", litellm=engine.litellm)

            async def model_info(target_id: str, name: str) -> ModelInfo:
                return await catalog.model_info(stack.account, name)

            stack = build_stack(engine, server, provider, secrets, store, tmp_path, model_info)
            attached, _ = await stack.attach()
            conversation = await store.create_conversation(
                title=DEFAULT_TITLE, account_id=stack.account.id, model=model, params=ChatParams()
            )
            problem = await stack.chat.refusal(
                target_id=stack.account.id, model=model, params=ChatParams(), text=TEXT, attachments=attached
            )
            shows = [r for r in server.requests if r.path == "/api/show"]
            assert [r.json() for r in shows] == [{"model": model}]
            if not refused:
                assert problem is None
                await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
                assert len(stack.bodies()) == 1
                return
            sentence = f"{model} on Local Ollama does not take images; pick a vision model or remove the image."
            assert isinstance(problem, AttachmentRefused) and problem.message == sentence
            with pytest.raises(AttachmentRefused, match="does not take images"):
                await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
            assert stack.bodies() == [] and await store.messages(conversation.id) == []
            # What the server said is kept: asked again, it is not asked again.
            assert len([r for r in server.requests if r.path == "/api/show"]) == 1


@pytest.mark.asyncio
async def test_an_edited_message_keeps_its_attached_files(
    engine: LiteLLMEngine, parts: tuple[SecretStore, ConversationStore], tmp_path: Path
) -> None:
    secrets, store = parts
    provider = PROVIDERS["openai"]
    with FaultServer() as server:
        stack = build_stack(engine, server, provider, secrets, store, tmp_path)
        await secrets.set(stack.account.id, provider.key)
        attached, stored = await stack.attach()
        conversation = await stack.conversation()
        await finished(stack.chat.reply(conversation, TEXT, attachments=attached))
        [question, _] = await store.messages(conversation.id)

        await finished(await stack.chat.edit(conversation, question.id, "What do these say, briefly?"))

        [edited, _] = await store.messages(conversation.id)
        assert (edited.content, edited.attachments, edited.versions) == ("What do these say, briefly?", attached, 2)
        parts_sent = user_messages(stack.bodies()[-1])[0]
        assert parts_sent[0] == {"type": "text", "text": "What do these say, briefly?"}
        assert parts_sent[1:] == expected_user_content("openai", stored)[1:]
