"""The whole pool flow through the window: two Anthropic accounts, a pool, a rate-limited first
account, the second answers, and both show in the Usage view. Real LiteLLM, loopback Anthropic."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.conversations import MessageStatus
from tests.servers.anthropic_fault import AnthropicServer
from tests.ui.conftest import run

KEY_A, KEY_B = "sk-ant-test-a", "sk-ant-test-b"


@pytest.fixture
def anthropic():
    with AnthropicServer() as server:
        yield server


def _add_account(qtbot, pane, label: str, base_url: str, key: str) -> str:
    qtbot.mouseClick(pane.add_button, Qt.MouseButton.LeftButton)
    pane.form.provider_combo.setCurrentIndex(pane.form.provider_combo.findData("anthropic"))
    qtbot.keyClicks(pane.form.name_edit, label)
    qtbot.keyClicks(pane.form.url_edit, base_url)
    qtbot.keyClicks(pane.form.key_edit, key)
    with qtbot.waitSignal(pane.account_saved, timeout=10_000) as saved:
        qtbot.mouseClick(pane.form.save_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(pane.check_finished, timeout=20_000) as checked:
        qtbot.mouseClick(pane.form.check_button, Qt.MouseButton.LeftButton)
    assert checked.args[0] == "ok", checked.args
    return saved.args[0]


def test_pool_fails_over_from_a_rate_limited_account_and_usage_shows_both(qtbot, modeldesk, anthropic):
    app = modeldesk
    app.window.show_pane("Accounts")
    accounts = app.accounts_pane
    work = _add_account(qtbot, accounts, "Claude, work", anthropic.base_url, KEY_A)
    personal = _add_account(qtbot, accounts, "Claude, personal", anthropic.base_url, KEY_B)
    # The check stored the organisation each key belongs to.
    assert app.accounts.find(work).organization_id and app.accounts.find(personal).organization_id

    # Make the pool in the Pools tab: both accounts, in order.
    accounts.tabs.setCurrentIndex(1)
    editor = accounts.pools_editor
    qtbot.mouseClick(editor.new_button, Qt.MouseButton.LeftButton)
    editor.provider_combo.setCurrentIndex(editor.provider_combo.findData("anthropic"))
    qtbot.keyClicks(editor.name_edit, "Claude pool")
    assert editor.member_ids() == [work, personal]
    with qtbot.waitSignal(editor.pool_saved, timeout=10_000) as saved:
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    pool_id = saved.args[0]

    # Chat through the pool while the first account is rate-limited.
    anthropic.behaviour[KEY_A] = "429"
    app.window.show_pane("Chat")
    chat = app.chat_pane
    assert chat.select_model(pool_id, "claude-sonnet-4-5")
    qtbot.keyClicks(chat.composer, "Hello pool")
    with qtbot.waitSignal(chat.reply_finished, timeout=60_000) as finished:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["complete"]
    shown = chat.transcript.toPlainText()
    assert "via Claude, personal after 1 retry" in shown
    assert "“Claude, work” could not answer" in chat.notice.text()
    assert anthropic.counts[KEY_A] >= 1 and anthropic.counts[KEY_B] >= 1
    messages = run(qtbot, app.store.messages(chat.current_conversation.id))
    assert messages[-1].status is MessageStatus.COMPLETE and messages[-1].metrics.account_id == personal

    # The Accounts list says the first account is cooling down.
    assert "cooling down" in app.states.status_text(work)

    # Usage: both accounts appear, the failed attempt under the first, the answer under the second.
    app.window.show_pane("Usage")
    usage = app.usage_pane
    qtbot.waitUntil(lambda: usage.model.rowCount() >= 2, timeout=10_000)
    labels = {usage.model.index(r, 1).data() for r in range(usage.model.rowCount())}
    assert {"Claude, work", "Claude, personal"} <= labels
    records = run(qtbot, app.usage.records(limit=10))
    assert {(r.account_id, r.status) for r in records} == {(work, "failed"), (personal, "ok")}
