"""The newer parameter rows in the chat pane, against the loopback servers: each reaches the server,
a row shows only where the picked model takes its parameter, and a hidden row keeps its value
without sending it."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QUrl

from desktop_app.domain.accounts import Account
from tests.servers.anthropic_fault import THINKING_PIECES, AnthropicServer
from tests.ui.conftest import WAIT_MS, run


def _send(qtbot, pane, text: str, expect: str = "complete") -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [expect]


def _row_shown(panel, name: str) -> bool:
    return panel._form.isRowVisible(panel._rows[name])


def test_the_newer_parameters_reach_the_server_and_top_k_is_said_to_be_left_out(
    qtbot, modeldesk, fault_account, fault_server
):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    panel = pane.params
    assert all(_row_shown(panel, name) for name in panel._rows)  # a server LiteLLM cannot describe: every row
    panel.top_k.setValue(40)
    panel.max_completion_tokens.setValue(25)
    panel.presence_penalty.setValue(0.5)
    panel.frequency_penalty.setValue(-0.3)
    panel.reasoning_effort.setCurrentIndex(panel.reasoning_effort.findData("low"))
    _send(qtbot, pane, "newer parameters")

    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert (body["max_completion_tokens"], body["presence_penalty"], body["frequency_penalty"]) == (25, 0.5, -0.3)
    assert body["reasoning_effort"] == "low" and "top_k" not in body
    assert "Left out top_k: ok does not take it." in html.unescape(pane.notice.text())
    # The conversation keeps them, for the next time it is opened.
    stored = run(qtbot, modeldesk.store.list_conversations())[0].params
    assert (stored.top_k, stored.max_completion_tokens, stored.reasoning_effort) == (40, 25, "low")


def test_a_claude_model_shows_the_rows_it_takes_and_its_thinking_reaches_the_server(qtbot, modeldesk, fault_account):
    pane, panel = modeldesk.chat_pane, modeldesk.chat_pane.params
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        run(qtbot, modeldesk.accounts.save_account(account, "sk-ant-test-a"))
        run(qtbot, modeldesk.accounts.refresh_models(account.id))
        panel.seed.setValue(42)  # set while every row shows (a server LiteLLM cannot describe)
        assert pane.select_model(account.id, "claude-sonnet-4-5")
        qtbot.waitUntil(lambda: not _row_shown(panel, "seed"), timeout=60_000)  # Claude takes no seed

        assert _row_shown(panel, "thinking") and _row_shown(panel, "top_k") and _row_shown(panel, "reasoning_effort")
        assert not _row_shown(panel, "presence_penalty") and not _row_shown(panel, "frequency_penalty")
        assert panel.seed.value() == 42 and panel.params().seed is None  # kept, not sent
        panel.thinking_budget.setValue(2048)
        panel.max_tokens.setValue(4096)
        _send(qtbot, pane, "think first")

        body = server.requests[-1].json()
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] == 4096
        assert "seed" not in body
        assert "Thinking (" in pane.transcript.toPlainText()  # folded under its link once the answer came
        pane.transcript.anchorClicked.emit(QUrl("thinking:0"))
        assert "".join(THINKING_PIECES).strip() in pane.transcript.toPlainText()  # the thinking is shown

        # Thinking off, top k on (Anthropic refuses the two together).
        panel.thinking_budget.setValue(panel.thinking_budget.minimum())
        panel.top_k.setValue(5)
        _send(qtbot, pane, "no thinking now")
        body = server.requests[-1].json()
        assert body["top_k"] == 5 and "thinking" not in body

        # Back to a server LiteLLM cannot describe: every row again, the seed as it was.
        assert pane.select_model(fault_account.id, "ok")
        qtbot.waitUntil(lambda: _row_shown(panel, "seed"), timeout=WAIT_MS)
        assert panel.params().seed == 42


def test_a_thinking_budget_at_or_over_max_tokens_is_refused_before_anything_is_sent(
    qtbot, modeldesk, fault_account, fault_server
):
    pane, panel = modeldesk.chat_pane, modeldesk.chat_pane.params
    assert pane.select_model(fault_account.id, "ok")
    panel.thinking_budget.setValue(2048)
    panel.max_tokens.setValue(1024)
    pane.composer.setPlainText("this cannot go")
    before = len(fault_server.requests)
    run(qtbot, pane.send(pane.composer.toPlainText()))

    assert "The thinking budget (2,048 tokens) must be less than max tokens (1,024)." in html.unescape(
        pane.notice.text()
    )
    assert pane.composer.toPlainText() == "this cannot go"
    assert len(fault_server.requests) == before
