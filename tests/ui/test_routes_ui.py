"""The Routes tab and routes in the chat's model picker, against the real AccountService (settings file,
in-memory keyring)."""

from __future__ import annotations

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.domain.routes import Route, RouteTarget
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.ui.accounts.model import AccountListModel, StatusKindRole, StatusRole
from desktop_app.ui.accounts.routes import RouteListModel, RoutesEditor
from desktop_app.ui.chat.models import ID_ROLE, ModelPickerModel
from tests.ui.conftest import WAIT_MS, ask_to_remove, run, saved_settings

offscreen_show = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


def add(qtbot, service: AccountService, label: str, provider_id: str, models: tuple[str, ...]) -> Account:
    account = Account(provider_id=provider_id, label=label)
    run(qtbot, service.save_account(account, f"key-{label}"))
    service._catalog._remember(account.id, models)  # a list fetched earlier
    return account


def shown_targets(editor: RoutesEditor) -> list[str]:
    return [editor.targets_list.item(r).text() for r in range(editor.targets_list.count())]


def pick(editor: RoutesEditor, target_id: str, model: str) -> None:
    editor.target_combo.setCurrentIndex(editor.target_combo.findData(target_id))
    editor.model_combo.setCurrentIndex(editor.model_combo.findText(model))
    editor.add_target_button.click()


@offscreen_show
def test_a_route_is_composed_reordered_saved_and_removed(qtbot, add_widget, account_service, settings_file) -> None:
    local = add(qtbot, account_service, "Laptop", "llamacpp", ("gemma",))
    work = add(qtbot, account_service, "Work", "anthropic", ("claude-haiku-4-5", "claude-sonnet-4-5"))
    home = add(qtbot, account_service, "Home", "anthropic", ("claude-sonnet-4-5",))
    pool = Pool(label="Claude", provider_id="anthropic", account_ids=(work.id, home.id))
    run(qtbot, account_service.save_pool(pool))
    editor = add_widget(RoutesEditor(accounts=account_service))
    assert editor.empty_hint.isVisibleTo(editor) and editor.form_title.text() == "New route"
    sources = [editor.target_combo.itemText(i) for i in range(editor.target_combo.count())]
    assert sources == ["Claude (pool)", "Laptop", "Work", "Home"]
    editor.target_combo.setCurrentIndex(editor.target_combo.findData(pool.id))
    # A pool offers the models its members have in common.
    assert [editor.model_combo.itemText(i) for i in range(editor.model_combo.count())] == ["claude-sonnet-4-5"]

    run(qtbot, editor.save_current_route())
    assert editor.status_label.text() == "Not saved: a route needs a name."
    editor.name_edit.setText("private-first")
    run(qtbot, editor.save_current_route())
    assert editor.status_label.text() == "Not saved: add at least one target to the route."

    pick(editor, pool.id, "claude-sonnet-4-5")
    pick(editor, local.id, "gemma")
    pick(editor, work.id, "claude-haiku-4-5")
    assert shown_targets(editor) == [
        "claude-sonnet-4-5  —  Claude (pool)",
        "gemma  —  Laptop",
        "claude-haiku-4-5  —  Work",
    ]
    editor.targets_list.setCurrentRow(1)
    editor.target_up_button.click()  # the local model first
    assert editor.targets_list.currentRow() == 0 and not editor.target_up_button.isEnabled()
    editor.targets_list.setCurrentRow(2)
    editor.target_remove_button.click()
    with qtbot.waitSignal(editor.route_saved, timeout=WAIT_MS) as saved:
        editor.save_button.click()

    (route,) = account_service.routes
    assert saved.args == [route.id] and route.label == "private-first"
    assert [(t.target_id, t.model) for t in route.targets] == [(local.id, "gemma"), (pool.id, "claude-sonnet-4-5")]
    assert saved_settings(settings_file).routes == [route]
    assert editor.list_view.currentIndex().row() == 0 and editor.status_label.text() == "Saved route “private-first”."

    confirm = ask_to_remove(qtbot, editor)
    with qtbot.waitSignal(editor.route_removed, timeout=WAIT_MS):
        confirm.click()
    assert account_service.routes == [] and saved_settings(settings_file).routes == []
    assert len(account_service.pools) == 1 and len(account_service.accounts) == 3


def test_route_list_model_passes_the_model_tester(qtbot, qtmodeltester, account_service) -> None:
    work = add(qtbot, account_service, "Work", "anthropic", ("claude-sonnet-4-5",))
    route = Route(label="fast", targets=(RouteTarget(target_id=work.id, model="claude-sonnet-4-5"),))
    run(qtbot, account_service.save_route(route))
    model = RouteListModel(accounts=account_service)
    qtmodeltester.check(model)
    assert model.rowCount() == 1 and model.data(model.index(0)) == "fast"
    with qtbot.waitSignal(model.dataChanged):  # removing its account empties the route in place
        run(qtbot, account_service.remove_account(work.id))
    assert account_service.routes[0].targets == ()


def test_routes_are_their_own_group_in_the_picker_and_found_again_after_a_rename(qtbot, account_service) -> None:
    work = add(qtbot, account_service, "Work", "anthropic", ("claude-sonnet-4-5",))
    route = Route(label="fast", targets=(RouteTarget(target_id=work.id, model="claude-sonnet-4-5"),))
    run(qtbot, account_service.save_route(route))
    run(qtbot, account_service.save_route(Route(label="empty")))  # no targets: not offered
    picker = ModelPickerModel(accounts=account_service)

    texts = [picker.data(picker.index(r)) for r in range(picker.rowCount())]
    assert texts == ["fast  —  route, 1 target", "claude-sonnet-4-5  —  Work"]
    assert picker.data(picker.index(0), ID_ROLE) == (route.id, "fast")
    run(qtbot, account_service.save_route(route.model_copy(update={"label": "quick"})))
    picker.reload()
    assert picker.row_of(route.id, "fast") == 0  # a conversation that picked it still finds it


def test_an_account_found_down_shows_it_on_its_row_and_the_interval_is_set_in_the_routes_tab(
    qtbot, add_widget, account_service, settings_file
) -> None:
    local = add(qtbot, account_service, "Laptop", "llamacpp", ("gemma",))
    model = AccountListModel(accounts=account_service)
    with qtbot.waitSignal(model.dataChanged):
        account_service.states.set_down(local.id, "Could not connect to 127.0.0.1:9.")
    index = model.index(0)
    assert model.data(index, StatusKindRole) == "down"
    assert model.data(index, StatusRole) == "Down at the last health check: Could not connect to 127.0.0.1:9."

    editor = add_widget(RoutesEditor(accounts=account_service))
    assert editor.health_spin.value() == 0 and editor.health_spin.text() == "off"
    editor.health_spin.setValue(15)
    editor.health_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: saved_settings(settings_file).health_check_minutes == 15, timeout=WAIT_MS)
    assert account_service.health_check_minutes == 15
