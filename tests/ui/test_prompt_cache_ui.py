"""The "Cache the system prompt and history" switch, in the real app against the loopback servers:
greyed out where the provider takes no cache marks, sent as Anthropic breakpoints and kept with the
conversation where it does, and the reply's metrics line says what the cache read and saved."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from tests.servers.anthropic_fault import AnthropicServer
from tests.ui.conftest import WAIT_MS, run

LONG_SYSTEM = " ".join(f"rule{i}" for i in range(1100))


def _send(qtbot, pane, text: str) -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["complete"]


def test_the_switch_caches_a_claude_conversation_and_the_metrics_say_what_it_saved(qtbot, modeldesk, fault_account):
    pane, panel = modeldesk.chat_pane, modeldesk.chat_pane.params
    assert pane.select_model(fault_account.id, "ok")
    qtbot.waitUntil(lambda: not panel.cache_prompt.isEnabled(), timeout=WAIT_MS)
    assert "Only Claude (Anthropic) accounts" in panel.cache_prompt.toolTip()

    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        run(qtbot, modeldesk.accounts.save_account(account, "sk-ant-test-a"))
        run(qtbot, modeldesk.accounts.refresh_models(account.id))
        assert pane.select_model(account.id, "claude-sonnet-4-5")
        qtbot.waitUntil(panel.cache_prompt.isEnabled, timeout=60_000)
        panel.system_prompt.setPlainText(LONG_SYSTEM)
        qtbot.mouseClick(panel.cache_prompt, Qt.MouseButton.LeftButton)
        assert panel.cache_prompt.isChecked()
        _send(qtbot, pane, "first turn")
        first = server.requests[-1].json()
        _send(qtbot, pane, "second turn")
        second = server.requests[-1].json()

    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    marked = [b for m in second["messages"] for b in m["content"] if "cache_control" in b]
    assert len(marked) == 1 and marked[0]["text"].startswith("w0 ")  # the first reply, before the new turn
    shown = pane.transcript.toPlainText()
    assert re.search(r"cache: 1,\d{3} written, \$0\.\d+ more to write", shown)  # the first reply wrote the prefix
    # The second read it, and wrote the first turn after it (the history's breakpoint).
    assert re.search(r"cache: 1,\d{3} read, \d+ written, saved \$0\.\d+", shown)
    stored = run(qtbot, modeldesk.store.list_conversations())[0].params
    assert stored.cache_prompt is True
