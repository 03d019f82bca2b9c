"""The whole app, in a real window, against a real llama-server with the real Gemma 270M GGUF."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop_app.app import ModelDeskApp
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.paths import AppPaths
from tests.ui.conftest import run


def _start_app(qtbot) -> ModelDeskApp:
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    return app


def _close_app(qtbot, app: ModelDeskApp) -> None:
    run(qtbot, app.aclose())
    app.window.close()
    app.window.deleteLater()


def test_add_account_chat_stop_and_find_it_after_restart(qtbot, qloop, llama_server, connection_log):
    app = _start_app(qtbot)

    # Accounts: add the llama.cpp server as a user would, and check it.
    accounts = app.accounts_pane
    app.window.show_pane("Accounts")
    qtbot.mouseClick(accounts.add_button, Qt.MouseButton.LeftButton)
    accounts.form.provider_combo.setCurrentIndex(accounts.form.provider_combo.findData("llamacpp"))
    qtbot.keyClicks(accounts.form.name_edit, "Local gemma")
    qtbot.keyClicks(accounts.form.url_edit, f"{llama_server.base_url}/v1")
    with qtbot.waitSignal(accounts.account_saved, timeout=10_000) as saved:
        qtbot.mouseClick(accounts.form.save_button, Qt.MouseButton.LeftButton)
    account_id = saved.args[0]
    with qtbot.waitSignal(accounts.check_finished, timeout=20_000) as checked:
        qtbot.mouseClick(accounts.form.check_button, Qt.MouseButton.LeftButton)
    assert checked.args[0] == "ok", checked.args

    # Chat: pick gemma, send, watch it stream, see the metrics.
    app.window.show_pane("Chat")
    chat = app.chat_pane
    with qtbot.waitSignal(chat.models_refreshed, timeout=20_000):
        qtbot.mouseClick(chat.refresh_button, Qt.MouseButton.LeftButton)
    row = chat.picker_model.row_of(account_id, "gemma")
    assert row >= 0
    chat.model_picker.setCurrentIndex(row)
    chat.params.max_tokens.setValue(24)
    qtbot.keyClicks(chat.composer, "Write a short poem about the sea.")
    with qtbot.waitSignal(chat.reply_started, timeout=5_000):
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(chat.transcript.plain_text_of_last_message()) > 0, timeout=60_000)
    with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as finished:
        pass
    assert finished.args == ["complete"]
    shown = chat.transcript.toPlainText()
    assert "Write a short poem about the sea." in shown
    assert "TTFT" in shown and "tok/s" in shown and "24 out tokens" in shown

    # Stop mid-reply: the stream ends promptly and llama-server stops generating.
    chat.params.max_tokens.setValue(0)  # "default": with --ignore-eos it would run to the context limit
    qtbot.keyClicks(chat.composer, "Count from one to one thousand.")
    with qtbot.waitSignal(chat.reply_started, timeout=5_000):
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(chat.transcript.plain_text_of_last_message()) > 40, timeout=60_000)
    assert chat.streaming, chat.transcript.toPlainText()[-500:]
    assert llama_server.busy()
    with qtbot.waitSignal(chat.reply_finished, timeout=10_000) as stopped:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Escape)
    assert stopped.args == ["stopped"]
    qtbot.waitUntil(lambda: not llama_server.busy(), timeout=5_000)
    conversation_id = chat.current_conversation.id
    partial = chat.transcript.plain_text_of_last_message()
    _close_app(qtbot, app)

    # Restart: the conversation is back, with both replies and the stop noted.
    again = _start_app(qtbot)
    try:
        assert again.chat_pane.current_conversation is not None
        assert again.chat_pane.current_conversation.id == conversation_id
        messages = run(qtbot, again.store.messages(conversation_id))
        assert [(m.role, m.status) for m in messages] == [
            ("user", MessageStatus.COMPLETE),
            ("assistant", MessageStatus.COMPLETE),
            ("user", MessageStatus.COMPLETE),
            ("assistant", MessageStatus.STOPPED),
        ]
        assert messages[3].content.strip() and partial.strip()[:20] in messages[3].content
        shown = again.chat_pane.transcript.toPlainText()
        assert "Count from one to one thousand." in shown and "Stopped" in shown
        assert again.chat_pane.selected_model() == (account_id, "gemma")
    finally:
        _close_app(qtbot, again)

    # The app talked to the configured endpoint and to nothing else.
    port = llama_server.port
    assert connection_log.internet_connects(), "the audit hook saw no connection at all"
    others = [addr for addr in connection_log.internet_connects() if tuple(addr)[:2] != ("127.0.0.1", port)]
    assert others == []
    assert set(connection_log.lookups) <= {"127.0.0.1", "localhost", None}
