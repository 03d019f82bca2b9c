"""The Accounts pane's list: order, duplicate, enable/disable, and each account's live status."""

from __future__ import annotations

from collections.abc import Callable

import keyring
import keyring.backend
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SERVICE
from desktop_app.services.accounts.state import AccountStates
from desktop_app.ui.accounts import AccountListModel, AccountsPane
from desktop_app.ui.accounts.model import (
    EnabledRole,
    StatusKindRole,
    StatusRole,
)
from tests.ui.conftest import WAIT_MS, run, saved_settings


@pytest.fixture
def make_pane(add_widget) -> Callable[[AccountService], AccountsPane]:
    return lambda accounts: add_widget(AccountsPane(accounts=accounts))


@pytest.fixture
def pane(make_pane, account_service) -> AccountsPane:
    return make_pane(account_service)


def stored_key(account_id: str) -> str | None:
    return keyring.get_password(SERVICE, account_id)


def labels(pane: AccountsPane) -> list[str]:
    return [pane.model.data(pane.model.index(r)) for r in range(pane.model.rowCount())]


# --- order, duplicate, enable ------------------------------------------------------------------


def add_accounts(qtbot, service: AccountService, *labels_: str, provider_id: str = "anthropic") -> list[Account]:
    created = []
    for label in labels_:
        account = Account(provider_id=provider_id, label=label)
        run(qtbot, service.save_account(account, f"sk-ant-{label.lower()}-key"))
        created.append(account)
    return created


def test_move_up_and_down_change_the_order_in_the_list_and_the_settings(
    qtbot,
    pane,
    account_service,
    settings_file,
) -> None:
    one, two, three = add_accounts(qtbot, account_service, "One", "Two", "Three")
    pane.select_account(three.id)
    assert not pane.move_down_button.isEnabled() and pane.move_up_button.isEnabled()

    with qtbot.waitSignal(pane.model.rowsMoved, timeout=WAIT_MS):
        pane.move_up_button.click()
    qtbot.waitUntil(lambda: labels(pane) == ["One", "Three", "Two"], timeout=WAIT_MS)
    assert [a.id for a in account_service.accounts] == [one.id, three.id, two.id]
    assert [a.id for a in saved_settings(settings_file).accounts] == [one.id, three.id, two.id]
    assert pane.editing_id == three.id and pane.list_view.currentIndex().row() == 1  # still selected

    run(qtbot, pane.move_selected(-1))
    assert labels(pane) == ["Three", "One", "Two"]
    assert not pane.move_up_button.isEnabled() and not pane.move_up_action.isEnabled()

    pane.select_account(one.id)
    pane.move_down_action.trigger()
    qtbot.waitUntil(lambda: labels(pane) == ["Three", "Two", "One"], timeout=WAIT_MS)
    assert [a.label for a in saved_settings(settings_file).accounts] == ["Three", "Two", "One"]
    assert pane.editing_id == one.id and not pane.move_down_button.isEnabled()


def test_duplicate_places_a_copy_with_the_key_below_and_selects_it(qtbot, pane, account_service, settings_file) -> None:
    first, _second = add_accounts(qtbot, account_service, "Work", "Home")
    run(
        qtbot,
        account_service.save_account(first.model_copy(update={"colour": "#16a34a", "extra_headers": {"X-Team": "a"}})),
    )
    pane.select_account(first.id)

    with qtbot.waitSignal(pane.account_saved, timeout=WAIT_MS) as saved:
        pane.duplicate_button.click()

    copy = account_service.find(saved.args[0])
    assert copy is not None and copy.id != first.id
    assert labels(pane) == ["Work", "Work (copy)", "Home"]
    assert (copy.provider_id, copy.colour, copy.extra_headers) == ("anthropic", "#16a34a", {"X-Team": "a"})
    assert stored_key(copy.id) == stored_key(first.id) == "sk-ant-work-key"
    assert pane.editing_id == copy.id and pane.form.name_edit.text() == "Work (copy)"
    assert pane.list_view.currentIndex().row() == 1
    assert [a.label for a in saved_settings(settings_file).accounts] == ["Work", "Work (copy)", "Home"]
    assert pane.form.key_edit.text() == ""  # the copied key is stored, never shown


def test_disable_marks_the_row_and_enable_unmarks_it(qtbot, pane, account_service) -> None:
    (account,) = add_accounts(qtbot, account_service, "Claude")
    pane.select_account(account.id)
    assert pane.toggle_enabled_button.text() == "Disable"

    with qtbot.waitSignal(pane.model.dataChanged, timeout=WAIT_MS):
        pane.toggle_enabled_button.click()
    qtbot.waitUntil(lambda: not account_service.find(account.id).enabled, timeout=WAIT_MS)

    assert pane.model.data(pane.model.index(0), EnabledRole) is False
    assert pane.toggle_enabled_button.text() == "Enable" and not pane.form.enabled_check.isChecked()
    assert not pane.list_view.grab().isNull()  # the delegate paints the "disabled" marker without trouble

    run(qtbot, pane.toggle_selected_enabled())
    assert account_service.find(account.id).enabled and pane.model.data(pane.model.index(0), EnabledRole) is True
    assert pane.toggle_enabled_button.text() == "Disable" and pane.form.enabled_check.isChecked()
    assert stored_key(account.id) == "sk-ant-claude-key"  # a toggle never touches the key


def test_the_model_follows_moves_and_a_duplicate_in_the_middle(qtbot, qtmodeltester, account_service) -> None:
    *_, three = add_accounts(qtbot, account_service, "One", "Two", "Three")
    model = AccountListModel(accounts=account_service)
    qtmodeltester.check(model)

    with qtbot.waitSignal(model.rowsMoved) as moved:
        run(qtbot, account_service.move_account(three.id, -2))
    assert moved.args[1:3] == [2, 2] and moved.args[4] == 0
    with qtbot.waitSignal(model.rowsInserted) as inserted:
        run(qtbot, account_service.duplicate_account(three.id))
    assert inserted.args[1:] == [1, 1]
    assert [model.data(model.index(r)) for r in range(model.rowCount())] == ["Three", "Three (copy)", "One", "Two"]
    qtmodeltester.check(model, force_py=True)


# --- live status -------------------------------------------------------------------------------

ANTHROPIC_LIMITS = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-tokens-limit": "40000",
    "anthropic-ratelimit-tokens-remaining": "39000",
}


def status(pane: AccountsPane, account: Account) -> tuple[str, str]:
    index = pane.model.index(pane.model.row_of(account.id))
    return pane.model.data(index, StatusRole), pane.model.data(index, StatusKindRole)


def test_status_line_shows_cooldown_and_rate_limits(qtbot, pane, account_service) -> None:
    cooling, limited = add_accounts(qtbot, account_service, "Cooling", "Limited")
    assert status(pane, cooling) == ("", "") and status(pane, limited) == ("", "")

    with qtbot.waitSignal(pane.model.dataChanged, timeout=WAIT_MS) as changed:
        account_service.states.cool_down(cooling.id, 30)
    assert changed.args[0].row() == 0
    text, kind = status(pane, cooling)
    assert text.startswith("Rate-limited: cooling down for ") and text.endswith(" s more.") and kind == "cooling"

    with qtbot.waitSignal(pane.model.dataChanged, timeout=WAIT_MS) as changed:
        account_service.states.record_headers(limited.id, ANTHROPIC_LIMITS)
    assert changed.args[0].row() == 1
    assert status(pane, limited) == ("requests 49/50 · tokens 39,000/40,000", "limits")

    account_service.states.mark_broken(limited.id, "The key was refused (401); paste a new one.")
    assert status(pane, limited) == ("The key was refused (401); paste a new one.", "broken")
    assert not pane.list_view.grab().isNull()


def test_a_cooldown_counts_down_and_clears_itself(qtbot, make_account_service, make_pane, monkeypatch) -> None:
    monkeypatch.setattr(AccountListModel, "STATUS_TICK_MS", 20)  # the clock is fake; only the ticks are real
    now = [1000.0]
    account_service = make_account_service(states=AccountStates(clock=lambda: now[0]))
    pane = make_pane(account_service)
    (account,) = add_accounts(qtbot, account_service, "Claude")

    account_service.states.cool_down(account.id, 30)
    assert status(pane, account)[0] == "Rate-limited: cooling down for 30 s more."

    now[0] += 12
    qtbot.waitUntil(lambda: status(pane, account)[0] == "Rate-limited: cooling down for 18 s more.", timeout=WAIT_MS)
    with qtbot.waitSignal(pane.model.dataChanged, timeout=WAIT_MS):  # the next tick repaints the row
        now[0] += 30
    assert status(pane, account) == ("", "")
    qtbot.waitUntil(lambda: not pane.model.ticking, timeout=WAIT_MS)  # nothing left to count down


def test_the_pools_tab_sits_next_to_the_accounts_and_counts_them(qtbot, pane, account_service) -> None:
    assert [pane.tabs.tabText(i) for i in range(pane.tabs.count())] == ["Accounts", "Pools", "Routes"]
    assert pane.tabs.widget(1) is pane.pools_editor

    work, home = add_accounts(qtbot, account_service, "Work", "Home")
    run(qtbot, account_service.save_pool(Pool(label="Claude", provider_id="anthropic", account_ids=(work.id, home.id))))
    assert pane.tabs.tabText(1) == "Pools (1)"
    run(qtbot, account_service.remove_pool(account_service.pools[0].id))
    assert pane.tabs.tabText(1) == "Pools"
