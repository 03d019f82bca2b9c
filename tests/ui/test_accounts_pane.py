"""The Accounts pane against the real services: keyring (in memory), settings file, loopback servers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable

import keyring
import keyring.backend
import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox

from desktop_app.domain.accounts import Account
from desktop_app.domain.providers import PROVIDERS
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SERVICE, SecretStore
from desktop_app.ui.accounts import AccountListModel, AccountsPane
from desktop_app.ui.accounts.model import (
    ColourRole,
    DetailRole,
    EnabledRole,
    ProviderIdRole,
)
from desktop_app.ui.accounts.pane import (
    EMPTY_HINT,
    STORED_KEY_PLACEHOLDER,
)
from desktop_app.ui.theme import colours
from tests.ui.conftest import WAIT_MS, ask_to_remove, run, saved_settings

# Shown windows make the offscreen platform say this; it is about the test platform, not the pane.
offscreen_show = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


class KeyringThatFailsOnWrite(keyring.backend.KeyringBackend):
    """Reads work, writes raise: the store must fall back to memory mid-session."""

    priority = -1  # never picked by keyring.get_keyring() elsewhere in the session

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("the keyring refused the write")

    def delete_password(self, service: str, username: str) -> None:
        pass


@pytest.fixture
def make_pane(add_widget) -> Callable[[AccountService], AccountsPane]:
    return lambda accounts: add_widget(AccountsPane(accounts=accounts))


@pytest.fixture
def pane(make_pane, account_service) -> AccountsPane:
    return make_pane(account_service)


def fill(pane: AccountsPane, provider_id: str, name: str, *, url: str = "", key: str = "") -> None:
    """What a user does after pressing "Add"."""
    pane.add_button.click()
    pane.form.provider_combo.setCurrentIndex(pane.form.provider_combo.findData(provider_id))
    pane.form.name_edit.setText(name)
    pane.form.url_edit.setText(url)
    pane.form.key_edit.setText(key)


def stored_key(account_id: str) -> str | None:
    return keyring.get_password(SERVICE, account_id)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the model ---------------------------------------------------------------------------------


def test_account_list_model_passes_the_model_tester(qtbot, qtmodeltester, account_service) -> None:
    for label, provider_id in (("Work", "openai"), ("Claude", "anthropic"), ("Laptop", "ollama")):
        run(qtbot, account_service.save_account(Account(provider_id=provider_id, label=label)))
    model = AccountListModel(accounts=account_service)

    qtmodeltester.check(model)

    assert model.rowCount() == 3
    first = model.index(0)
    work = account_service.accounts[0]
    assert model.data(first) == "Work"
    assert model.data(first, Qt.ItemDataRole.UserRole) == work.id
    assert model.data(first, ProviderIdRole) == "openai"
    assert model.data(first, Qt.ItemDataRole.ToolTipRole) == "OpenAI · https://api.openai.com/v1"
    assert model.data(model.index(2), DetailRole) == "Ollama · http://127.0.0.1:11434"
    assert model.account_at(1) == account_service.accounts[1] and model.account_at(3) is None
    assert model.row_of(work.id) == 0 and model.row_of("nope") == -1

    # Changes arrive as precise row signals, still watched by the tester.
    with qtbot.waitSignal(model.rowsInserted):
        run(qtbot, account_service.save_account(Account(provider_id="openai", label="Home")))
    with qtbot.waitSignal(model.dataChanged) as changed:
        run(qtbot, account_service.save_account(work.model_copy(update={"label": "Office"})))
    assert changed.args[0].row() == 0 and model.data(first) == "Office"
    with qtbot.waitSignal(model.rowsRemoved) as removed:
        run(qtbot, account_service.remove_account(account_service.accounts[1].id))
    assert removed.args[1:] == [1, 1]
    assert [model.data(model.index(r)) for r in range(model.rowCount())] == ["Office", "Laptop", "Home"]
    qtmodeltester.check(model, force_py=True)


# --- adding and editing ------------------------------------------------------------------------


def test_two_accounts_of_one_provider_are_added_and_keys_stay_out_of_the_settings_file(
    qtbot,
    pane,
    account_service,
    settings_file,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert pane.empty_hint.isVisibleTo(pane) and pane.empty_hint.text() == EMPTY_HINT
    assert not pane.list_view.isVisibleTo(pane)

    fill(pane, "openai", "OpenAI, work", key="  sk-work-0123456789\n")  # pasted with stray whitespace
    with qtbot.waitSignal(pane.account_saved, timeout=WAIT_MS) as saved:
        pane.form.save_button.click()
    work_id = saved.args[0]
    fill(pane, "openai", "OpenAI, home", key="sk-home-9876543210")
    home = run(qtbot, pane.save_current())

    assert [(a.label, a.provider_id) for a in account_service.accounts] == [
        ("OpenAI, work", "openai"),
        ("OpenAI, home", "openai"),
    ]
    assert stored_key(work_id) == "sk-work-0123456789"
    assert stored_key(home.id) == "sk-home-9876543210"
    assert pane.list_view.isVisibleTo(pane) and not pane.empty_hint.isVisibleTo(pane)
    assert pane.list_view.currentIndex().row() == 1 and pane.editing_id == home.id
    assert pane.form.key_edit.text() == "" and pane.form.key_edit.echoMode() is QLineEdit.EchoMode.Password
    raw = settings_file.read_bytes()
    assert b"OpenAI, home" in raw
    assert b"sk-work" not in raw and b"sk-home" not in raw
    assert "sk-work" not in caplog.text and "sk-home" not in caplog.text


def test_a_bidi_override_typed_into_a_name_is_taken_out(qtbot, pane, account_service, settings_file) -> None:
    fill(pane, "openai", "Invoice \u202efdp.exe")  # shown as is, it reads "Invoice exe.pdf"
    account = run(qtbot, pane.save_current())

    assert account.label == "Invoice fdp.exe"
    assert pane.list_view.model().index(0, 0).data(Qt.ItemDataRole.DisplayRole) == "Invoice fdp.exe"
    assert "\u202e" not in pane.form.name_edit.text() and "\u202e" not in settings_file.read_text("utf-8")


def test_editing_without_typing_a_key_keeps_the_stored_key(qtbot, pane, account_service) -> None:
    fill(pane, "anthropic", "Claude", key="sk-ant-original")
    account = run(qtbot, pane.save_current())
    qtbot.waitUntil(lambda: pane.form.key_edit.placeholderText() == STORED_KEY_PLACEHOLDER, timeout=WAIT_MS)
    assert pane.form.key_edit.text() == ""  # a stored key is never put back into the field
    assert pane.form.remove_key_button.isEnabled()

    pane.form.name_edit.setText("Claude, work")
    run(qtbot, pane.save_current())
    assert account_service.find(account.id).label == "Claude, work"
    assert pane.model.data(pane.model.index(0)) == "Claude, work"
    assert stored_key(account.id) == "sk-ant-original"

    pane.form.key_edit.setText(" sk-ant-replaced ")
    run(qtbot, pane.save_current())
    assert stored_key(account.id) == "sk-ant-replaced"

    run(qtbot, pane.remove_key())
    assert stored_key(account.id) is None
    assert account_service.find(account.id) is not None
    assert pane.form.key_edit.placeholderText() == "Paste the key: stored in the system keyring"
    assert not pane.form.remove_key_button.isEnabled()


def test_show_reveals_only_what_was_typed_and_hides_again_on_another_account(qtbot, pane) -> None:
    fill(pane, "openai", "One", key="sk-one")
    run(qtbot, pane.save_current())
    fill(pane, "mistral", "Two", key="typed-secret")
    assert pane.form.key_edit.echoMode() is QLineEdit.EchoMode.Password

    pane.form.show_key_button.click()
    assert pane.form.key_edit.echoMode() is QLineEdit.EchoMode.Normal and pane.form.show_key_button.text() == "Hide"

    pane.select_account(pane.model.account_at(0).id)
    assert pane.form.key_edit.text() == "" and pane.form.key_edit.echoMode() is QLineEdit.EchoMode.Password
    assert not pane.form.show_key_button.isEnabled()  # nothing typed, nothing to show
    assert pane.form.provider_combo.currentData() == "openai" and pane.form.name_edit.text() == "One"
    assert pane.form.url_edit.placeholderText() == PROVIDERS["openai"].default_base_url


@pytest.mark.parametrize(
    ("name", "url", "sentence"),
    [
        ("Work", "api.example.com/v1", "Not saved: the base URL must start with http:// or https://."),
        ("   ", "", "Not saved: an account needs a name."),
    ],
)
def test_invalid_form_says_why_and_saves_nothing(
    qtbot,
    pane,
    account_service,
    settings_file,
    memory_keyring,
    name,
    url,
    sentence,
) -> None:
    fill(pane, "openai", name, url=url, key="sk-unsaved")

    assert run(qtbot, pane.save_current()) is None

    assert pane.form.status_label.text() == sentence
    assert colours().error in pane.form.status_label.styleSheet()
    assert account_service.accounts == [] and not settings_file.exists() and memory_keyring.entries == {}
    assert (pane.form.name_edit.text(), pane.form.url_edit.text(), pane.form.key_edit.text()) == (
        name,
        url,
        "sk-unsaved",
    )


# --- checking ----------------------------------------------------------------------------------


def check(qtbot, pane: AccountsPane) -> tuple[str, str]:
    with qtbot.waitSignal(pane.check_finished, timeout=WAIT_MS) as finished:
        run(qtbot, pane.check_current())
    return tuple(finished.args)


def test_check_before_saving_reports_ok_and_invalid_key(qtbot, pane, account_service, fault_server) -> None:
    fill(pane, "openai_compatible", "Test server", url=fault_server.base_url, key="sk-test")

    status, message = check(qtbot, pane)

    assert status == "ok" and message.startswith("OK")
    assert pane.form.status_label.text() == message and colours().ok in pane.form.status_label.styleSheet()
    assert pane.form.check_button.isEnabled()
    assert account_service.accounts == []  # checking never saves
    assert fault_server.requests[-1].path == "/v1/models"

    pane.form.key_edit.setText("sk-wrong")
    status, message = check(qtbot, pane)
    assert status == "invalid key"
    assert pane.form.status_label.text() == message and colours().error in pane.form.status_label.styleSheet()


def test_check_of_a_saved_account_uses_its_stored_key(qtbot, pane, fault_server) -> None:
    fill(pane, "openai_compatible", "Test server", url=fault_server.base_url, key="sk-test")
    run(qtbot, pane.save_current())
    assert pane.form.key_edit.text() == ""

    assert check(qtbot, pane)[0] == "ok"
    assert fault_server.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_check_of_a_closed_port_reports_unreachable(qtbot, pane) -> None:
    fill(pane, "llamacpp", "Nothing here", url=f"http://127.0.0.1:{closed_port()}/v1")

    status, message = check(qtbot, pane)

    assert status == "unreachable" and message.startswith("Unreachable")
    assert colours().error in pane.form.status_label.styleSheet()


@offscreen_show
def test_a_running_check_shows_checking_and_is_cancelled_when_the_pane_closes(qtbot, qloop, pane) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        fill(pane, "llamacpp", "Silent", url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        pane.show()

        qtbot.mouseClick(pane.form.check_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: pane.form.status_label.text() == "Checking…", timeout=WAIT_MS)
        assert not pane.form.check_button.isEnabled()
        checks = [t for t in asyncio.all_tasks(qloop) if t.get_name().endswith("check_current")]
        assert len(checks) == 1

        pane.close()
        qtbot.waitUntil(checks[0].done, timeout=WAIT_MS)

    assert checks[0].cancelled()
    assert pane.form.check_button.isEnabled() and pane.form.status_label.text() == ""


# --- removing ----------------------------------------------------------------------------------


@offscreen_show
def test_remove_asks_first_and_removes_account_and_key(qtbot, pane, account_service) -> None:
    for name, key in (("First", "sk-first"), ("Second", "sk-second")):
        fill(pane, "deepseek", name, key=key)
        run(qtbot, pane.save_current())
    first, second = account_service.accounts
    pane.select_account(first.id)

    run(qtbot, pane.remove_selected(False))
    box = pane.confirm_box
    assert box is not None and box.isVisible() and "First" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: pane.confirm_box is None, timeout=WAIT_MS)
    assert len(account_service.accounts) == 2 and stored_key(first.id) == "sk-first"

    confirm = ask_to_remove(qtbot, pane)
    with qtbot.waitSignal(pane.account_removed, timeout=WAIT_MS) as removed:
        confirm.click()

    assert removed.args == [first.id]
    assert account_service.accounts == [second] and stored_key(first.id) is None
    assert stored_key(second.id) == "sk-second"
    assert pane.editing_id == second.id and pane.list_view.currentIndex().row() == 0

    assert run(qtbot, pane.remove_selected(True)) is True
    assert account_service.accounts == [] and pane.editing_id is None
    assert pane.empty_hint.isVisibleTo(pane) and pane.form.form_title.text() == "New account"
    assert not pane.remove_button.isEnabled()


# --- the keyring notice ------------------------------------------------------------------------


def test_banner_says_keys_are_not_persistent_without_a_keyring(make_account_service, make_pane) -> None:
    secrets = SecretStore(backend=fail.Keyring())
    pane = make_pane(make_account_service(secrets))

    assert not secrets.persistent and secrets.notice
    assert pane.notice_banner.isVisibleTo(pane) and pane.notice_banner.text() == secrets.notice
    assert pane.form.key_edit.placeholderText() == "Paste the key: kept for this session only"


def test_banner_is_hidden_with_a_keyring_and_appears_when_it_fails(qtbot, make_account_service, make_pane) -> None:
    secrets = SecretStore(backend=KeyringThatFailsOnWrite())
    pane = make_pane(make_account_service(secrets))
    assert secrets.persistent and not pane.notice_banner.isVisibleTo(pane)
    assert pane.form.key_edit.placeholderText() == "Paste the key: stored in the system keyring"

    fill(pane, "gemini", "Gemini", key="AIza-session-key")
    account = run(qtbot, pane.save_current())

    assert account is not None and not secrets.persistent
    assert pane.notice_banner.isVisibleTo(pane) and pane.notice_banner.text() == secrets.notice
    assert run(qtbot, secrets.get(account.id)) == "AIza-session-key"  # kept for the session


def test_the_start_up_keyring_notice_is_said_once_in_the_window(qtbot, qloop) -> None:
    from desktop_app.app import ModelDeskApp
    from desktop_app.services.paths import AppPaths

    app = ModelDeskApp(
        paths=AppPaths.from_environment(), secrets=SecretStore(backend=fail.Keyring()), offer_env_import=False
    )
    app.window.show()
    qtbot.waitExposed(app.window)
    try:
        run(qtbot, app.start())
        notice = app.secrets.notice
        assert notice and app.window.banner.text() == notice and app.window.banner.isVisible()
        app.window.show_pane("Accounts")
        assert not app.accounts_pane.notice_banner.isVisibleTo(app.accounts_pane)  # not twice
        assert app.accounts_pane.form.key_edit.placeholderText() == "Paste the key: kept for this session only"
    finally:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()


# --- colour, headers, enabled, budgets ---------------------------------------------------------


def test_colour_headers_enabled_and_budgets_are_saved_and_reloaded(
    qtbot,
    make_account_service,
    make_pane,
    settings_file,
) -> None:
    pane = make_pane(make_account_service())
    fill(pane, "anthropic", "Claude, research", key="sk-ant-research-0001")
    assert pane.form.colour_picker.colour() == "" and pane.form.enabled_check.isChecked()
    assert pane.form.budget_tokens_spin.text() == "none" and pane.form.budget_usd_spin.text() == "none"
    pane.form.colour_picker.swatch("#2563eb").click()
    pane.form.headers_edit.setPlainText("anthropic-beta: prompt-caching-2024-07-31\n\n  X-Team :  research  \n")
    pane.form.enabled_check.setChecked(False)
    pane.form.budget_tokens_spin.setValue(250_000)
    pane.form.budget_usd_spin.setValue(7.5)

    account = run(qtbot, pane.save_current())

    expected = {
        "colour": "#2563eb",
        "enabled": False,
        "daily_budget_tokens": 250_000,
        "daily_budget_usd": 7.5,
        "extra_headers": {"anthropic-beta": "prompt-caching-2024-07-31", "X-Team": "research"},
    }
    on_disk = saved_settings(settings_file).account(account.id)
    for name, value in expected.items():
        assert getattr(account, name) == value and getattr(on_disk, name) == value
    row = pane.model.index(0)
    assert pane.model.data(row, ColourRole) == "#2563eb" and pane.model.data(row, EnabledRole) is False

    # A fresh start reads it all back into the form.
    reopened = make_pane(make_account_service(settings=saved_settings(settings_file)))
    assert reopened.editing_id == account.id
    assert (
        reopened.form.colour_picker.colour() == "#2563eb" and reopened.form.colour_picker.swatch("#2563eb").isChecked()
    )
    assert reopened.form.headers_edit.toPlainText() == "anthropic-beta: prompt-caching-2024-07-31\nX-Team: research"
    assert not reopened.form.enabled_check.isChecked()
    assert reopened.form.budget_tokens_spin.value() == 250_000 and reopened.form.budget_usd_spin.value() == 7.5

    # Back to no colour and no limits.
    reopened.form.colour_picker.swatch("").click()
    reopened.form.budget_tokens_spin.setValue(0)
    reopened.form.budget_usd_spin.setValue(0)
    reopened.form.headers_edit.clear()
    cleared = run(qtbot, reopened.save_current())
    assert (cleared.colour, cleared.daily_budget_tokens, cleared.daily_budget_usd, cleared.extra_headers) == (
        "",
        None,
        None,
        {},
    )


def test_organisation_is_shown_read_only_when_known_and_kept_on_save(qtbot, pane, account_service) -> None:
    account = Account(provider_id="anthropic", label="Claude", organization_id="org-5c1e")
    run(qtbot, account_service.save_account(account, "sk-ant-org-key"))
    pane.select_account(account.id)
    assert (
        pane.form.organisation_label.isVisibleTo(pane)
        and pane.form.organisation_label.text() == "Organisation: org-5c1e"
    )

    pane.form.name_edit.setText("Claude, team")
    saved = run(qtbot, pane.save_current())

    assert saved.organization_id == "org-5c1e"  # the form has no field for it, yet it is not lost
    fill(pane, "anthropic", "Another")
    assert not pane.form.organisation_label.isVisibleTo(pane)


def test_a_key_an_older_version_kept_as_the_organisation_is_neither_shown_nor_written_back(
    qtbot, make_pane, make_account_service, settings_file
) -> None:
    key = "sk-ant-api03-" + "Qx7" * 20
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "accounts": [{"id": "a1", "provider_id": "anthropic", "label": "Claude", "organization_id": key}],
            }
        ),
        "utf-8",
    )
    pane = make_pane(make_account_service(settings=saved_settings(settings_file)))
    pane.select_account("a1")

    assert not pane.form.organisation_label.isVisibleTo(pane) and key not in pane.form.organisation_label.text()
    run(qtbot, pane.save_current())
    assert key not in settings_file.read_text("utf-8")


@pytest.mark.parametrize(
    ("headers", "sentence"),
    [
        (
            "Authorization: Bearer sk-smuggled",
            "Not saved: the Authorization header is set by ModelDesk (put keys in the key field).",
        ),
        (
            "x-api-key: sk-ant-smuggled",
            "Not saved: the x-api-key header is set by ModelDesk (put keys in the key field).",
        ),
        (
            "anthropic-beta: tools\njust some words",
            "Not saved: line 2 of the extra headers needs the form “Name: value”.",
        ),
        ("Bad Name: value", "Not saved: “Bad Name” is not a valid header name."),
    ],
)
def test_a_reserved_or_malformed_header_is_refused_with_one_sentence(
    qtbot,
    pane,
    account_service,
    settings_file,
    memory_keyring,
    headers,
    sentence,
) -> None:
    fill(pane, "anthropic", "Claude", key="sk-ant-unsaved")
    pane.form.headers_edit.setPlainText(headers)

    assert run(qtbot, pane.save_current()) is None

    assert pane.form.status_label.text() == sentence and colours().error in pane.form.status_label.styleSheet()
    assert account_service.accounts == [] and not settings_file.exists() and memory_keyring.entries == {}
    assert pane.form.headers_edit.toPlainText() == headers  # left as typed, to be corrected


@pytest.mark.parametrize(
    ("provider_id", "key", "warning"),
    [
        (
            "anthropic",
            "sk-proj-openai-key",
            "Anthropic keys usually start with “sk-ant-”; check that this is the right key.",
        ),
        (
            "openai",
            "AIzaSy-a-gemini-key",
            "This looks like a Google Gemini key, not an OpenAI one; check the provider.",
        ),
        ("openai", "sk-ant-api03-abc", "This looks like an Anthropic key, not an OpenAI one; check the provider."),
        ("openai", "gibberish-key", "OpenAI keys usually start with “sk-”; check that this is the right key."),
    ],
)
def test_a_key_with_the_wrong_prefix_is_saved_with_an_amber_warning(
    qtbot,
    pane,
    account_service,
    provider_id,
    key,
    warning,
) -> None:
    fill(pane, provider_id, "Pasted", key=f"  {key}\n")

    account = run(qtbot, pane.save_current())

    assert account is not None and account_service.find(account.id) is not None
    assert stored_key(account.id) == key  # trimmed, and saved all the same
    assert pane.form.key_warning_label.isVisibleTo(pane) and pane.form.key_warning_label.text() == warning
    assert colours().warning in pane.form.key_warning_label.styleSheet()
    assert pane.form.status_label.text() == "Saved “Pasted”."
    assert key not in pane.form.key_warning_label.text() and key not in pane.form.status_label.text()

    pane.form.key_edit.setText("x")  # typing a new key: the warning was about the old one
    assert not pane.form.key_warning_label.isVisibleTo(pane)


def test_a_key_with_the_usual_prefix_saves_without_a_warning(qtbot, pane) -> None:
    fill(pane, "anthropic", "Claude", key="sk-ant-api03-fine")
    run(qtbot, pane.save_current())
    assert not pane.form.key_warning_label.isVisibleTo(pane) and pane.form.key_warning_label.text() == ""
