"""Retries with backoff in the real app: a cloud account that fails twice with a rate limit answers on
the third try; the notices say each retry and the reply's metrics line says it came after two. The
server's retry-after is 0 s, so the app's own (real) waits are empty."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from tests.ui.conftest import run


def send_to_twice_rate_limited(qtbot, modeldesk, fault_server, text: str) -> str:
    """Send `text` to a cloud account whose model answers 429 twice (retry-after 0), then answers;
    how the reply ended."""
    fault_server.retry_after = "0"
    account = Account(provider_id="openai", label="OpenAI", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(account.id))
    pane = modeldesk.chat_pane
    assert pane.select_model(account.id, "flaky-2-429")
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_a_rate_limited_reply_is_retried_and_says_so(qtbot, modeldesk, fault_server):
    assert send_to_twice_rate_limited(qtbot, modeldesk, fault_server, "try until it answers") == "complete"
    pane = modeldesk.chat_pane
    assert "answered after 2 retries" in pane.transcript.toPlainText()
    assert "“OpenAI” is rate-limited; asking it again in 0 s (retry 2 of 2)." in html.unescape(pane.notice.text())
    records = run(qtbot, modeldesk.usage.records())
    assert sorted((r.status, r.backoff_retries) for r in records) == [("failed", 0), ("failed", 1), ("ok", 2)]


def test_fewer_retries_set_in_the_routes_tab_give_up_sooner(qtbot, modeldesk, fault_server):
    editor = modeldesk.accounts_pane.routes_editor
    assert (editor.retries_spin.value(), editor.retries_spin.text()) == (2, "2 times")
    editor.retries_spin.setValue(1)
    editor.retries_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: modeldesk.settings.current.request_retries == 1, timeout=10_000)

    # The second 429 is the end: no third try.
    assert send_to_twice_rate_limited(qtbot, modeldesk, fault_server, "one retry only") == "failed"
    records = run(qtbot, modeldesk.usage.records())
    assert sorted((r.status, r.backoff_retries) for r in records) == [("failed", 0), ("failed", 1)]
    editor.retries_spin.setValue(0)
    editor.retries_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: modeldesk.settings.current.request_retries == 0, timeout=10_000)
    assert editor.retries_spin.text() == "never"
