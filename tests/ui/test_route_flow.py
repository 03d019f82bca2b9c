"""The route flow through the window: a local model first, then two Claude accounts, one on the
Anthropic API and one on Amazon Bedrock. The real llama-server (stopped before the chat), the
Anthropic Messages and Admin twins on one loopback address as api.anthropic.com serves both, and the
Bedrock twin reached through LiteLLM's real Bedrock adapter. The route is made in the Routes tab and
picked in the chat; Usage shows the attempts, and the Admin API's report beside the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from desktop_app.domain.cloud_secrets import aws_credentials
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.accounts.catalog import CheckStatus
from desktop_app.ui.usage.org_model import ComparisonModel
from tests.servers import anthropic_admin as ant
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.bedrock_runtime import BedrockServer
from tests.servers.llama import LlamaServer
from tests.servers.shared_host import SharedHost
from tests.ui.conftest import run

CLAUDE = "claude-sonnet-4-5"
BEDROCK_CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
KEY_ID, SECRET = "AKIATWINEXAMPLE00001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTWINSECRET"
WORK_KEY_ID = "apikey_01Work"  # the admin twin's id of ant.API_KEY_WORK
WAIT_MS = 20_000


@pytest.fixture
def anthropic():
    """The Messages twin, with the Admin twin (seeded with a week of the organisation's usage) on its address."""
    messages, admin = AnthropicServer(valid_keys={ant.API_KEY_WORK}), ant.AnthropicAdminTwin()
    admin.seed(datetime.now(UTC).date())
    with SharedHost(messages, {"/v1/organizations/": admin}):
        yield messages, admin


@pytest.fixture
def bedrock_twin():
    with BedrockServer(valid_keys={KEY_ID}) as server:
        yield server


def _add(qtbot, app, account: Account, key: str) -> None:
    run(qtbot, app.accounts.save_account(account, key))
    assert run(qtbot, app.accounts.check(account)).status is CheckStatus.OK  # its model list, kept


def _send(qtbot, chat, text: str) -> None:
    qtbot.keyClicks(chat.composer, text)
    with qtbot.waitSignal(chat.reply_finished, timeout=60_000) as finished:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["complete"]


def _twin_tokens(admin: ant.AnthropicAdminTwin, day: date, key_id: str) -> int:
    """What the admin twin reports for one day and key: every input, cache and output token."""
    tokens = ("uncached_input_tokens", "cache_read_input_tokens", "cache_5m", "cache_1h", "output_tokens")
    return sum(row[t] for row in admin.usage if row["day"] == day and row["api_key_id"] == key_id for t in tokens)


def test_a_route_moves_from_a_stopped_local_model_to_claude_and_on_after_a_429(
    qtbot, modeldesk, anthropic, bedrock_twin
):
    app = modeldesk
    messages, admin = anthropic
    llama = LlamaServer().start()
    try:
        local = Account(provider_id="llamacpp", label="Laptop", base_url=llama.base_url)
        _add(qtbot, app, local, "")
    finally:
        llama.stop()  # the local one is stopped before the chat
    claude = Account(provider_id="anthropic", label="Claude API", base_url=messages.base_url)
    bedrock = Account(
        provider_id="bedrock", label="Claude on Bedrock", base_url=bedrock_twin.endpoint, region="us-east-1"
    )
    _add(qtbot, app, claude, ant.API_KEY_WORK)
    _add(qtbot, app, bedrock, aws_credentials(KEY_ID, SECRET))

    # The route, made in the Routes tab: the local model first, then the two Claude accounts.
    app.window.show_pane("Accounts")
    accounts = app.accounts_pane
    accounts.tabs.setCurrentIndex(2)
    editor = accounts.routes_editor
    qtbot.mouseClick(editor.new_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(editor.name_edit, "private-first")
    for account, model in ((local, "gemma"), (claude, CLAUDE), (bedrock, BEDROCK_CLAUDE)):
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
    qtbot.waitUntil(
        lambda: (
            chat.model_info.text()
            == f"Route: Laptop (gemma) → Claude API ({CLAUDE}) → Claude on Bedrock ({BEDROCK_CLAUDE});"
            " the first that answers replies"
        ),
        timeout=WAIT_MS,
    )
    _send(qtbot, chat, "Hello route")
    assert "via Claude API after 1 move" in chat.transcript.toPlainText()
    assert "“Laptop” could not answer" in chat.notice.text() and "Moving on along route" in chat.notice.text()
    assert not [seen for seen in bedrock_twin.seen if "/converse" in seen[0]]  # Bedrock not asked yet

    # A 429 on the Anthropic account moves the next request on to Bedrock.
    messages.behaviour[ant.API_KEY_WORK] = "429"
    _send(qtbot, chat, "Hello again")
    assert "via Claude on Bedrock after 2 moves" in chat.transcript.toPlainText()
    assert [seen for seen in bedrock_twin.seen if "/converse" in seen[0]] == [
        ("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream", KEY_ID, "us-east-1")
    ]  # one ConverseStream, signed with the account's access key id
    assert "".join(f"b{i} " for i in range(12)).strip() in chat.transcript.toPlainText()  # the twin's words
    stored_messages = run(qtbot, app.store.messages(chat.current_conversation.id))
    assert stored_messages[-1].status is MessageStatus.COMPLETE
    assert stored_messages[-1].metrics.account_id == bedrock.id
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

    # Beside the ledger, the Anthropic organisation's own report, once its admin key is entered.
    panel = usage.org_panel
    app.window.show_pane("Accounts")
    accounts.tabs.setCurrentIndex(0)
    accounts.select_account(claude.id)
    field = accounts.admin_key_field
    assert field is not None and field.isVisibleTo(accounts)
    field.edit.setText(ant.ADMIN_KEY)
    with qtbot.waitSignal(field.check_finished, timeout=WAIT_MS) as checked:
        field.check_button.click()
    assert checked.args[0] is True
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        assert run(qtbot, accounts.save_current()) is not None
    app.window.show_pane("Usage")
    assert panel.status_label.text() == "" and panel.tabs.isVisibleTo(panel)
    assert admin.requests and all(r.path.startswith("/v1/organizations/") for r in admin.requests)

    [ledger_day] = {d.day for d in run(qtbot, app.usage.daily(account_id=claude.id, days=7))}
    ours = sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in records if r.account_id == claude.id)
    theirs = _twin_tokens(admin, date.fromisoformat(ledger_day), WORK_KEY_ID)
    assert ours > 0 and theirs > 0
    rows = [r for r in panel.comparison.rows() if r.day == ledger_day and r.key_id == WORK_KEY_ID]
    assert [(r.model, r.provider_tokens, r.local_tokens, r.account_ids) for r in rows] == [
        (CLAUDE, theirs, ours, (claude.id,))
    ]
    shown = panel.comparison
    [row] = [r for r in range(shown.rowCount()) if shown.row_at(r) == rows[0]]
    cells = [shown.index(row, column).data() for column in range(shown.columnCount())]
    assert cells[ComparisonModel.KEY] == "Work laptop" and cells[ComparisonModel.USED_BY] == "Claude API"
    assert (
        cells[ComparisonModel.PROVIDER_TOKENS] == f"{theirs:,}" and cells[ComparisonModel.LOCAL_TOKENS] == f"{ours:,}"
    )
    assert cells[ComparisonModel.DIFFERENCE] == f"{theirs - ours:+,}"
