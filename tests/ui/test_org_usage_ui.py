"""The whole app against the admin-API twins: an admin key entered and checked in Accounts, the
providers' figures beside the ledger in Usage, the organisation's keys with the accounts that use
them, and a key disabled after the question that says what it does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time

import pytest
from PySide6.QtWidgets import QMessageBox

from desktop_app.domain.accounts import Account
from desktop_app.domain.usage import UsageRecord
from desktop_app.ui.usage.org import NO_ADMIN_KEY, OPENAI_CANNOT_DISABLE
from tests.servers import anthropic_admin as ant
from tests.servers import openai_admin as oai
from tests.ui.conftest import run

TODAY = datetime.now(UTC).date()
WAIT_MS = 20_000


@pytest.fixture
def anthropic() -> Iterator[ant.AnthropicAdminTwin]:
    with ant.AnthropicAdminTwin() as twin:
        twin.seed(TODAY)
        yield twin


@pytest.fixture
def openai() -> Iterator[oai.OpenAIAdminTwin]:
    with oai.OpenAIAdminTwin() as twin:
        twin.seed(TODAY)
        yield twin


def _cells(view, column: int) -> list[str]:
    model = view.model()
    return [model.index(row, column).data() for row in range(model.rowCount())]


def test_an_admin_key_is_checked_refused_when_ordinary_and_saved_to_the_keyring(qtbot, modeldesk, anthropic) -> None:
    app = modeldesk
    work = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
    run(qtbot, app.accounts.save_account(work, ant.API_KEY_WORK))
    panel = app.usage_pane.org_panel  # built first: a saved admin key must reach it
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        panel.request_reload(7)
    assert not panel.tabs.isVisibleTo(panel)
    pane = app.accounts_pane
    pane.select_account(work.id)
    field = pane.admin_key_field
    assert field is not None and field.isVisibleTo(pane)

    field.edit.setText(ant.API_KEY_WORK)  # an ordinary key where the admin key goes
    assert run(qtbot, pane.save_current()) is None
    assert "looks like an ordinary API key" in pane.form.status_label.text()

    field.edit.setText("sk-ant-admin01-not-this-org-00000000")
    with qtbot.waitSignal(field.check_finished, timeout=WAIT_MS) as checked:
        field.check_button.click()
    assert checked.args[0] is False and "did not accept the admin key" in field.note.text()

    field.edit.setText(ant.ADMIN_KEY)
    with qtbot.waitSignal(field.check_finished, timeout=WAIT_MS) as checked:
        field.check_button.click()
    assert checked.args == [True, "The admin key works: usage, costs and API keys can be read."]
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        assert run(qtbot, pane.save_current()) is not None
    assert panel.tabs.isVisibleTo(panel) and panel.keys.rowCount() == 3  # Usage asked the provider at once
    assert field.edit.text() == "" and field.remove_button.isEnabled()
    assert run(qtbot, app.secrets.get(f"{work.id}/admin")) == ant.ADMIN_KEY
    assert ant.ADMIN_KEY.encode() not in app.paths.settings_file.read_bytes()

    pane.form.provider_combo.setCurrentIndex(pane.form.provider_combo.findData("gemini"))
    assert not field.isVisibleTo(pane)  # only Anthropic and OpenAI have organisation admin keys


def test_usage_sets_the_providers_figures_beside_the_ledger_and_lists_their_keys(
    qtbot, modeldesk, anthropic, openai
) -> None:
    app = modeldesk
    work = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
    web = Account(provider_id="openai", label="Website", base_url=openai.base_url)
    run(qtbot, app.accounts.save_account(work, ant.API_KEY_WORK))
    run(qtbot, app.accounts.save_account(web, oai.PROJECT_KEY_WEB))
    noon = datetime.combine(TODAY, time(12), UTC).timestamp()
    run(
        qtbot,
        app.usage.record(UsageRecord(noon, work.id, "claude-sonnet-4-5", 10_000, 3_000, 0.08, 1.0, 0.2, "ok", "")),
    )

    panel = app.usage_pane.org_panel
    assert panel is not None
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        panel.request_reload(7)
    assert panel.status_label.text() == NO_ADMIN_KEY and not panel.tabs.isVisibleTo(panel)  # one line, no tables

    run(qtbot, app.org.set_admin_key(work, ant.ADMIN_KEY))
    run(qtbot, app.org.set_admin_key(web, oai.ADMIN_KEY))
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        panel.refresh_button.click()
    assert panel.status_label.text() == "" and panel.tabs.isVisibleTo(panel)
    rows = [r for r in panel.comparison.rows() if r.day == TODAY.isoformat() and r.key_id == "apikey_01Work"]
    assert [(r.provider_tokens, r.local_tokens, r.difference, r.account_ids) for r in rows] == [
        (17_400, 13_000, 4_400, (work.id,))
    ]
    view = panel.comparison_view
    assert "Claude, work" in _cells(view, 3) and "+4,400" in _cells(view, 7)
    assert {"Anthropic", "OpenAI"} <= set(_cells(view, 1))
    assert "$" in panel.summary_label.text() and "outside ModelDesk" in panel.summary_label.text()
    assert panel.costs.rowCount() > 0

    keys_view = panel.keys_view
    names = _cells(keys_view, 0)
    assert {"Work laptop", "Home", "CI pipeline", "website backend", "batch runner"} <= set(names)
    used = dict(zip(names, _cells(keys_view, 6), strict=True))
    assert used["Work laptop"] == "Claude, work" and used["website backend"] == "Website" and used["Home"] == "—"

    panel.tabs.setCurrentIndex(2)
    panel.select_key("key_Web01")
    assert not panel.disable_button.isEnabled() and panel.key_note.text() == OPENAI_CANNOT_DISABLE

    panel.select_key("apikey_01Work")
    panel.disable_button.click()
    qtbot.waitUntil(lambda: panel.confirm_box is not None and panel.confirm_box.isVisible(), timeout=WAIT_MS)
    box = panel.confirm_box
    assert box.text() == "Disable the API key “Work laptop” (sk-ant-api03-R2D...igAA) in workspace wrkspc_01Research?"
    assert "set its status to inactive" in box.informativeText()
    assert "ModelDesk accounts using it will stop working: Claude, work." in box.informativeText()
    confirm = next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole)
    with qtbot.waitSignal(panel.key_disabled, timeout=WAIT_MS) as disabled:
        confirm.click()
    assert disabled.args == ["apikey_01Work"]
    assert next(k for k in anthropic.keys if k.id == "apikey_01Work").status == "inactive"
    assert "inactive" in panel.status_label.text() and not panel.disable_button.isEnabled()


def test_a_failing_admin_call_says_so_in_one_sentence(qtbot, modeldesk, anthropic) -> None:
    app = modeldesk
    work = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
    run(qtbot, app.accounts.save_account(work, ant.API_KEY_WORK))
    run(qtbot, app.org.set_admin_key(work, ant.ADMIN_KEY))
    anthropic.rate_limited = 10
    panel = app.usage_pane.org_panel
    with qtbot.waitSignal(panel.report_loaded, timeout=WAIT_MS):
        panel.request_reload(7)
    assert panel.status_label.text().startswith("The Anthropic admin API is rate-limiting “Claude, work”.")
    assert panel.comparison.rowCount() == 0
