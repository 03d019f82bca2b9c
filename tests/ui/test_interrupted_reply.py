"""A reply a crash cut off, as the next start shows it: interrupted, with its text, Retry and a
usage record; its text is the context of the next message."""

from __future__ import annotations

from PySide6.QtCore import QUrl

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.paths import AppPaths
from tests.ui.conftest import run


def _start(qtbot) -> ModelDeskApp:
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    return app


def _close(qtbot, app: ModelDeskApp) -> None:
    run(qtbot, app.aclose())
    app.window.close()
    app.window.deleteLater()


def test_a_reply_cut_off_by_a_crash_comes_back_interrupted_with_retry(qtbot, qloop, fault_server):
    first = _start(qtbot)
    account = Account(provider_id="openai_compatible", label="Fault lab", base_url=fault_server.base_url)
    try:
        run(qtbot, first.accounts.save_account(account, "sk-test"))
        run(qtbot, first.accounts.refresh_models(account.id))
        # What a crash mid-reply leaves in the database: the reply still `streaming`.
        store = first.store
        conversation = run(qtbot, store.create_conversation(title="Story", account_id=account.id, model="ok"))
        run(qtbot, store.add_message(conversation.id, role="user", content="Tell me a story"))
        cut = run(
            qtbot,
            store.add_message(
                conversation.id,
                role="assistant",
                content="",
                account_id=account.id,
                model="ok",
                status=MessageStatus.STREAMING,
            ),
        )
        run(qtbot, store.update_message(cut.id, content="Once upon a"))
    finally:
        _close(qtbot, first)

    again = _start(qtbot)
    try:
        pane = again.chat_pane
        qtbot.waitUntil(lambda: "Once upon a" in pane.transcript.toPlainText(), timeout=10_000)
        shown = pane.transcript.toPlainText()
        assert (
            "Interrupted: ModelDesk closed while this reply was arriving; the text above goes with "
            "your next message as context"
        ) in shown
        assert "This reply was cut off.  Retry" in shown
        assert run(qtbot, again.store.get_message(cut.id)).status is MessageStatus.INTERRUPTED
        [record] = run(qtbot, again.usage.records())
        assert (record.account_id, record.model, record.status) == (account.id, "ok", "interrupted")

        # Retry answers the question again, in place of the cut-off reply.
        with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
            pane.transcript.anchorClicked.emit(QUrl("retry:"))
        assert blocker.args == ["complete"]
        messages = run(qtbot, again.store.messages(conversation.id))
        assert [(m.role, m.status) for m in messages] == [
            ("user", MessageStatus.COMPLETE),
            ("assistant", MessageStatus.COMPLETE),
        ]
        assert fault_server.requests[-1].json()["messages"] == [{"role": "user", "content": "Tell me a story"}]
    finally:
        _close(qtbot, again)
