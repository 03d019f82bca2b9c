"""The real app chats through an Ollama account: LiteLLM's `ollama_chat` provider talks to the
loopback Ollama server, which forwards the chat to a real llama-server running the Gemma 270M GGUF."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import MessageStatus
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import run

MODEL = "gemma3:270m"


@pytest.fixture
def ollama_account(qtbot, modeldesk, ollama_server: OllamaServer) -> Account:
    # A local model names the conversation with a second /api/chat of its own (test_auto_titles_ui):
    # off here, so the requests the server saw are the chat's alone.
    run(qtbot, modeldesk.settings.update(auto_titles="off"))
    account = Account(provider_id="ollama", label="Ollama here", base_url=ollama_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, ""))
    run(qtbot, modeldesk.accounts.refresh_models(account.id))
    assert modeldesk.chat_pane.select_model(account.id, MODEL)
    return account


def _send(qtbot, chat, text: str) -> None:
    qtbot.keyClicks(chat.composer, text)
    qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_a_chat_through_ollama_is_answered_by_llama_server(qtbot, modeldesk, ollama_server, ollama_account):
    chat = modeldesk.chat_pane
    chat.params.max_tokens.setValue(8)
    with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as finished:
        _send(qtbot, chat, "Write a long story about a dragon.")
    assert finished.args == ["complete"], chat.transcript.toPlainText()[-400:]
    shown = chat.transcript.plain_text_of_last_message()
    assert shown.strip() and "Hello from the test server." not in shown  # not the canned reply
    assert "8 out tokens" in chat.transcript.toPlainText() and "tok/s" in chat.transcript.toPlainText()
    _, reply = run(qtbot, modeldesk.store.messages(chat.current_conversation.id))
    assert reply.status is MessageStatus.COMPLETE
    assert reply.content.split() == shown.split()  # the transcript renders it as markdown
    assert reply.metrics.completion_tokens == 8 and reply.metrics.prompt_tokens > 0
    assert (reply.account_id, reply.model) == (ollama_account.id, MODEL)
    # LiteLLM spoke Ollama's /api/chat; the loopback server passed the chat on to llama-server.
    asked = [r.body for r in ollama_server.requests if r.path == "/api/chat"]
    assert len(asked) == 1 and asked[0]["model"] == MODEL and asked[0]["options"]["num_predict"] == 8
    last = asked[0]["messages"][-1]
    assert (last["role"], last["content"]) == ("user", "Write a long story about a dragon.")
    forwarded = ollama_server.upstream_requests
    assert len(forwarded) == 1 and forwarded[0]["max_tokens"] == 8
    assert forwarded[0]["messages"][-1] == {"role": "user", "content": "Write a long story about a dragon."}


def test_stop_closes_the_chain_down_to_llama_server(qtbot, modeldesk, llama, ollama_server, ollama_account):
    chat = modeldesk.chat_pane
    chat.params.temperature.setValue(0.0)  # greedy counting runs for a minute or more
    _send(qtbot, chat, "Count from 1 to 1000, separated by commas.")
    qtbot.waitUntil(lambda: len(chat.transcript.plain_text_of_last_message()) > 10, timeout=120_000)
    assert llama.busy()
    with qtbot.waitSignal(chat.reply_finished, timeout=10_000) as finished:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Escape)
    assert finished.args == ["stopped"]
    qtbot.waitUntil(lambda: not llama.busy(), timeout=10_000)  # its slot is free again
    assert ollama_server.client_disconnects == 1
    _, reply = run(qtbot, modeldesk.store.messages(chat.current_conversation.id))
    assert reply.status is MessageStatus.STOPPED and reply.content.strip()


def test_a_model_not_in_memory_shows_loading_then_answers(qtbot, modeldesk, ollama_server, ollama_account):
    """Choosing an installed model that is not loaded: the chat says it is loading, then proceeds."""
    ollama_server.load_s = 2.5  # longer than the chat waits before it says "Loading"
    assert ollama_server.running_names() == []
    chat = modeldesk.chat_pane
    chat.params.max_tokens.setValue(4)
    loading: list[str] = []
    with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as finished:
        _send(qtbot, chat, "Hi")
        qtbot.waitUntil(lambda: "Loading gemma3:270m" in chat.notice.text(), timeout=30_000)
        loading.append(chat.notice.text())
    assert finished.args == ["complete"], chat.transcript.toPlainText()[-400:]
    assert "a local server loads a model on first use" in loading[0]
    assert "Loading" not in chat.notice.text()  # gone once the answer came
    assert ollama_server.running_names() == [MODEL]  # loaded now, as Ollama's /api/ps would say
