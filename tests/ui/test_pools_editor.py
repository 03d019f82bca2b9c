"""The Pools tab against the real AccountService (settings file, in-memory keyring)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.ui.accounts.model import DetailRole
from desktop_app.ui.accounts.pools import (
    NO_ACCOUNTS_HINT,
    PoolIdRole,
    PoolListModel,
    PoolsEditor,
)
from desktop_app.ui.theme import colours
from tests.ui.conftest import WAIT_MS, ask_to_remove, run, saved_settings

offscreen_show = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def make_editor(add_widget) -> Callable[[AccountService], PoolsEditor]:
    return lambda accounts: add_widget(PoolsEditor(accounts=accounts))


def add(qtbot, service: AccountService, label: str, provider_id: str = "anthropic", **fields) -> Account:
    account = Account(provider_id=provider_id, label=label, **fields)
    run(qtbot, service.save_account(account, f"key-{label}"))
    return account


def members(editor: PoolsEditor) -> list[tuple[str, bool]]:
    items = [editor.members_list.item(r) for r in range(editor.members_list.count())]
    return [(item.text(), item.checkState() == Qt.CheckState.Checked) for item in items]


def test_pool_list_model_passes_the_model_tester(qtbot, qtmodeltester, account_service) -> None:
    work, home = add(qtbot, account_service, "Work"), add(qtbot, account_service, "Home")
    local = add(qtbot, account_service, "Laptop", "llamacpp")
    run(qtbot, account_service.save_pool(Pool(label="Claude", provider_id="anthropic", account_ids=(work.id, home.id))))
    run(
        qtbot,
        account_service.save_pool(
            Pool(label="Local", provider_id="llamacpp", account_ids=(local.id,), strategy=Strategy.ROUND_ROBIN)
        ),
    )
    model = PoolListModel(accounts=account_service)

    qtmodeltester.check(model)

    claude, local_pool = account_service.pools
    assert model.rowCount() == 2 and model.data(model.index(0)) == "Claude"
    assert model.data(model.index(0), DetailRole) == "Anthropic · In order (failover) · 2 accounts"
    assert model.data(model.index(1), DetailRole) == "llama.cpp server · Round-robin · 1 account"
    assert model.data(model.index(1), PoolIdRole) == local_pool.id
    assert model.pool_at(0) == claude and model.pool_at(2) is None
    assert model.row_of(local_pool.id) == 1 and model.row_of("pool:nope") == -1

    with qtbot.waitSignal(model.dataChanged) as changed:
        run(qtbot, account_service.save_pool(claude.model_copy(update={"label": "Claude, shared"})))
    assert changed.args[0].row() == 0 and model.data(model.index(0)) == "Claude, shared"
    with qtbot.waitSignal(model.dataChanged):  # removing a member account shrinks the pool in place
        run(qtbot, account_service.remove_account(home.id))
    assert model.data(model.index(0), DetailRole) == "Anthropic · In order (failover) · 1 account"
    with qtbot.waitSignal(model.rowsRemoved) as removed:
        run(qtbot, account_service.remove_pool(local_pool.id))
    assert removed.args[1:] == [1, 1]
    qtmodeltester.check(model, force_py=True)


@offscreen_show
def test_a_failover_pool_is_created_reordered_switched_to_round_robin_and_removed(
    qtbot,
    make_editor,
    account_service,
    settings_file,
) -> None:
    work, home = add(qtbot, account_service, "Work", colour="#d97706"), add(qtbot, account_service, "Home")
    add(qtbot, account_service, "GPT", "openai")
    editor = make_editor(account_service)
    assert editor.empty_hint.isVisibleTo(editor) and editor.form_title.text() == "New pool"
    providers = [editor.provider_combo.itemData(i) for i in range(editor.provider_combo.count())]
    assert providers == ["anthropic", "openai"]  # only providers that have an account

    editor.name_edit.setText("Claude, shared")
    editor.provider_combo.setCurrentIndex(editor.provider_combo.findData("anthropic"))
    assert members(editor) == [("Work", True), ("Home", True)]  # a new pool starts with them all
    assert editor.strategy_combo.currentData() == Strategy.FAILOVER
    with qtbot.waitSignal(editor.pool_saved, timeout=WAIT_MS) as saved:
        editor.save_button.click()

    (pool,) = account_service.pools
    assert saved.args == [pool.id] and editor.editing_id == pool.id
    assert (pool.label, pool.provider_id, pool.account_ids, pool.strategy) == (
        "Claude, shared",
        "anthropic",
        (work.id, home.id),
        Strategy.FAILOVER,
    )
    assert editor.list_view.isVisibleTo(editor) and editor.list_view.currentIndex().row() == 0
    assert editor.status_label.text() == "Saved pool “Claude, shared”."

    # Home first, and take turns.
    editor.members_list.setCurrentRow(1)
    editor.member_up_button.click()
    assert members(editor) == [("Home", True), ("Work", True)] and editor.members_list.currentRow() == 0
    assert not editor.member_up_button.isEnabled() and editor.member_down_button.isEnabled()
    editor.strategy_combo.setCurrentIndex(editor.strategy_combo.findData(Strategy.ROUND_ROBIN.value))
    assert "take turns" in editor.strategy_hint.text()
    edited = run(qtbot, editor.save_current_pool())

    assert edited.id == pool.id and account_service.pools == [edited]  # edited in place, not added
    assert edited.account_ids == (home.id, work.id) and edited.strategy is Strategy.ROUND_ROBIN
    (on_disk,) = saved_settings(settings_file).pools
    assert on_disk == edited

    # Remove asks first (without blocking), then removes the pool but not its accounts.
    run(qtbot, editor.remove_selected_pool(False))
    box = editor.confirm_box
    assert box is not None and box.isVisible() and "Claude, shared" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: editor.confirm_box is None, timeout=WAIT_MS)
    assert len(account_service.pools) == 1

    confirm = ask_to_remove(qtbot, editor)
    with qtbot.waitSignal(editor.pool_removed, timeout=WAIT_MS) as removed:
        confirm.click()
    assert removed.args == [pool.id]
    assert account_service.pools == [] and saved_settings(settings_file).pools == []
    assert len(account_service.accounts) == 3
    assert editor.empty_hint.isVisibleTo(editor) and editor.editing_id is None


def test_members_follow_the_provider_and_account_changes(qtbot, make_editor, account_service) -> None:
    add(qtbot, account_service, "Work")
    gpt = add(qtbot, account_service, "GPT", "openai")
    editor = make_editor(account_service)
    editor.provider_combo.setCurrentIndex(editor.provider_combo.findData("openai"))
    assert members(editor) == [("GPT", True)]

    editor.member_item(gpt.id).setCheckState(Qt.CheckState.Unchecked)
    add(qtbot, account_service, "GPT, home", "openai", enabled=False)
    assert members(editor) == [("GPT", False), ("GPT, home (disabled)", False)]  # the user's ticks are kept

    run(qtbot, account_service.remove_account(gpt.id))
    assert members(editor) == [("GPT, home (disabled)", False)]


@pytest.mark.parametrize(
    ("name", "tick", "sentence"),
    [
        ("Empty", False, "Not saved: tick at least one account for the pool."),
        ("   ", True, "Not saved: a pool needs a name."),
    ],
)
def test_a_pool_without_members_or_name_is_refused(
    qtbot,
    make_editor,
    account_service,
    settings_file,
    name,
    tick,
    sentence,
) -> None:
    work, home = add(qtbot, account_service, "Work"), add(qtbot, account_service, "Home")
    saved_before = settings_file.read_bytes()
    editor = make_editor(account_service)
    editor.name_edit.setText(name)
    for account in (work, home):
        editor.member_item(account.id).setCheckState(Qt.CheckState.Checked if tick else Qt.CheckState.Unchecked)

    assert run(qtbot, editor.save_current_pool()) is None

    assert editor.status_label.text() == sentence and colours().error in editor.status_label.styleSheet()
    assert account_service.pools == [] and settings_file.read_bytes() == saved_before


def test_a_refusal_from_the_service_is_said_in_one_sentence(qtbot, make_editor, account_service, monkeypatch) -> None:
    add(qtbot, account_service, "Work")
    editor = make_editor(account_service)
    editor.name_edit.setText("Claude")

    async def refuse(pool: Pool) -> None:
        raise ValueError(f"Every account in pool “{pool.label}” must be a Anthropic account.")

    monkeypatch.setattr(account_service, "save_pool", refuse)
    assert run(qtbot, editor.save_current_pool()) is None
    assert editor.status_label.text() == "Not saved: every account in pool “Claude” must be a Anthropic account."
    assert editor.save_button.isEnabled()


def test_without_accounts_the_form_says_to_add_one_first(qtbot, make_editor, account_service) -> None:
    editor = make_editor(account_service)

    assert editor.no_accounts_hint.isVisibleTo(editor) and editor.no_accounts_hint.text() == NO_ACCOUNTS_HINT
    assert not editor.save_button.isEnabled() and editor.provider_combo.count() == 0
    assert run(qtbot, editor.save_current_pool()) is None
    assert editor.status_label.text() == "Not saved: a pool is made of accounts of one provider; add an account first."

    add(qtbot, account_service, "Work")
    assert not editor.no_accounts_hint.isVisibleTo(editor) and editor.save_button.isEnabled()
    assert members(editor) == [("Work", True)]


def test_a_hugging_face_token_is_not_offered_for_a_pool(qtbot, make_editor, account_service) -> None:
    add(qtbot, account_service, "Work")
    add(qtbot, account_service, "Downloads", "huggingface")
    editor = make_editor(account_service)
    offered = [editor.provider_combo.itemData(i) for i in range(editor.provider_combo.count())]
    assert offered == ["anthropic"]  # a token for model downloads answers no chat
