"""The route flow through the window: a local model first, then two Claude accounts. The real
llama-server (stopped before the chat), an Anthropic account on the loopback Anthropic server, and a
second Claude account on a second instance of that server standing in for Bedrock (the Bedrock twin
is another part of this work). Real LiteLLM; the route is made in the Routes tab and picked in the chat."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.accounts.catalog import CheckStatus
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.llama import LlamaServer
from tests.ui.conftest import run

KEY_A, KEY_B = "sk-ant-test-a", "sk-ant-test-b"
CLAUDE = "claude-sonnet-4-5"


@pytest.fixture
def anthropic():
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def bedrock_stand_in():
    with AnthropicServer() as server:
        yield server


def _add(qtbot, app, account: Account, key: str) -> None:
    run(qtbot, app.accounts.save_account(account, key))
    assert run(qtbot, app.accounts.check(account)).status is CheckStatus.OK  # its model list, kept


def _send(qtbot, chat, text: str) -> None:
    qtbot.keyClicks(chat.composer, text)
    with qtbot.waitSignal(chat.reply_finished, timeout=60_000) as finished:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["complete"]


def test_a_route_moves_from_a_stopped_local_model_to_claude_and_on_after_a_429(
    qtbot, modeldesk, anthropic, bedrock_stand_in
):
    app = modeldesk
    llama = LlamaServer().start()
    try:
        local = Account(provider_id="llamacpp", label="Laptop", base_url=llama.base_url)
        _add(qtbot, app, local, "")
    finally:
        llama.stop()  # the local one is stopped before the chat
    claude = Account(provider_id="anthropic", label="Claude API", base_url=anthropic.base_url)
    bedrock = Account(provider_id="anthropic", label="Claude on Bedrock", base_url=bedrock_stand_in.base_url)
    _add(qtbot, app, claude, KEY_A)
    _add(qtbot, app, bedrock, KEY_B)

    # The route, made in the Routes tab: the local model first, then the two Claude accounts.
    app.window.show_pane("Accounts")
    accounts = app.accounts_pane
    accounts.tabs.setCurrentIndex(2)
    editor = accounts.routes_editor
    qtbot.mouseClick(editor.new_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(editor.name_edit, "private-first")
    for account, model in ((local, "gemma"), (claude, CLAUDE), (bedrock, CLAUDE)):
        editor.target_combo.setCurrentIndex(editor.target_combo.findData(account.id))
        editor.model_combo.setCurrentIndex(editor.model_combo.findText(model))
        assert editor.model_combo.currentText() == model
        qtbot.mouseClick(editor.add_target_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(editor.route_saved, timeout=10_000) as saved:
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    route_id = saved.args[0]
    assert accounts.tabs.tabText(2) == "Routes (1)"

    # The local model is stopped: the reply comes from the Anthropic account.
    app.window.show_pane("Chat")
    chat = app.chat_pane
    assert chat.select_model(route_id, "private-first")
    _send(qtbot, chat, "Hello route")
    assert "via Claude API after 1 move" in chat.transcript.toPlainText()
    assert "“Laptop” could not answer" in chat.notice.text() and "Moving on along route" in chat.notice.text()

    # A 429 on the Anthropic account moves the next request on to the Bedrock stand-in.
    anthropic.behaviour[KEY_A] = "429"
    _send(qtbot, chat, "Hello again")
    assert "via Claude on Bedrock after 2 moves" in chat.transcript.toPlainText()
    messages = run(qtbot, app.store.messages(chat.current_conversation.id))
    assert messages[-1].status is MessageStatus.COMPLETE and messages[-1].metrics.account_id == bedrock.id
    stored = run(qtbot, app.store.get_conversation(chat.current_conversation.id))
    assert stored is not None and stored.account_id == route_id  # the route is kept with the conversation

    # Usage: the three attempts of that reply, each under its own account.
    app.window.show_pane("Usage")
    usage = app.usage_pane

    def labels() -> set[str]:
        return {usage.model.index(r, 1).data() for r in range(usage.model.rowCount())}

    qtbot.waitUntil(lambda: {"Laptop", "Claude API", "Claude on Bedrock"} <= labels(), timeout=10_000)
    records = sorted(run(qtbot, app.usage.records(limit=10)), key=lambda r: r.at)
    assert [(r.account_id, r.status, r.error_kind) for r in records[-3:]] == [
        (local.id, "failed", "Unreachable"),
        (claude.id, "failed", "RateLimited"),
        (bedrock.id, "ok", ""),
    ]
