"""The first-run offer to import API keys from environment variables."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from desktop_app.services.accounts.accounts import AccountService, find_env_keys
from desktop_app.services.accounts.secrets import SERVICE
from desktop_app.ui.accounts.env_import import EnvImportDialog, maybe_offer_env_import
from tests.ui.conftest import WAIT_MS, saved_settings

ANTHROPIC_KEY = "sk-ant-api03-Zq8RkT2mWc9LpX4vHn7YbJ3sDf6GaE1uabcd"
OPENAI_KEY = "sk-proj-Mv3Nq7Wz2Kx9Rb4Tc8Lp1Hs6Jd5Fg0Ye"
ENVIRON = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY, "HOME": "/home/someone"}

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def make_dialog(account_service, add_widget) -> Callable[..., EnvImportDialog]:
    def make(environ: dict[str, str] = ENVIRON) -> EnvImportDialog:
        dialog = add_widget(EnvImportDialog(find_env_keys(environ), accounts=account_service))
        dialog.open()
        return dialog

    return make


def every_text(dialog: QWidget) -> list[str]:
    texts = [dialog.windowTitle(), dialog.toolTip()]
    for widget in dialog.findChildren(QWidget):
        texts += [widget.toolTip(), widget.accessibleName(), widget.accessibleDescription(), widget.whatsThis()]
        if isinstance(widget, (QLabel, QAbstractButton)):
            texts.append(widget.text())
    return texts


def test_both_keys_are_listed_masked_and_checked(make_dialog) -> None:
    dialog = make_dialog()

    assert dialog.isVisible()
    assert [box.text() for box in dialog.checkboxes] == [
        "Anthropic — ANTHROPIC_API_KEY — sk-ant…abcd",
        "OpenAI — OPENAI_API_KEY — sk-pro…g0Ye",
    ]
    assert all(box.isChecked() for box in dialog.checkboxes)  # checked, but nothing happens until Import
    texts = "\n".join(every_text(dialog))
    for secret in (ANTHROPIC_KEY, OPENAI_KEY):
        assert secret not in texts
        assert secret[6:-4] not in texts  # not even the part the mask hides


def test_import_selected_creates_only_the_ticked_accounts_with_their_keys(
    qtbot,
    make_dialog,
    account_service,
    settings_file,
    memory_keyring,
) -> None:
    dialog = make_dialog()
    assert account_service.accounts == [] and memory_keyring.entries == {}  # nothing before the user says so
    dialog.checkboxes[1].setChecked(False)

    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as imported:
        dialog.import_button.click()

    (account,) = account_service.accounts
    assert imported.args == [[account.id]]
    assert (account.provider_id, account.label) == ("anthropic", "Anthropic (ANTHROPIC_API_KEY)")
    assert memory_keyring.entries == {(SERVICE, account.id): ANTHROPIC_KEY}
    settings = saved_settings(settings_file)
    assert settings.env_import_offered and [a.id for a in settings.accounts] == [account.id]
    assert ANTHROPIC_KEY.encode() not in settings_file.read_bytes()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert dialog.keys == []  # the secrets are let go once answered


def test_import_is_disabled_with_nothing_ticked(make_dialog) -> None:
    dialog = make_dialog()
    for box in dialog.checkboxes:
        box.setChecked(False)
    assert not dialog.import_button.isEnabled()
    dialog.checkboxes[0].setChecked(True)
    assert dialog.import_button.isEnabled()


def test_not_now_declines_and_the_offer_is_not_repeated(
    qtbot,
    parent,
    account_service,
    settings_file,
    memory_keyring,
) -> None:
    dialog = maybe_offer_env_import(parent, account_service, environ=ENVIRON)
    assert isinstance(dialog, EnvImportDialog) and dialog.isVisible() and len(dialog.checkboxes) == 2

    with qtbot.waitSignal(dialog.declined, timeout=WAIT_MS):
        dialog.not_now_button.click()

    assert account_service.accounts == [] and memory_keyring.entries == {}
    assert account_service.env_import_offered and saved_settings(settings_file).env_import_offered
    assert maybe_offer_env_import(parent, account_service, environ=ENVIRON) is None


def test_escape_declines_too(qtbot, make_dialog, account_service) -> None:
    dialog = make_dialog()
    with qtbot.waitSignal(dialog.declined, timeout=WAIT_MS):
        dialog.reject()
    assert account_service.env_import_offered and account_service.accounts == []
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)


def test_nothing_is_offered_without_keys(parent, account_service: AccountService) -> None:
    blank = {"HOME": "/home/someone", "OPENAI_API_KEY": "  "}
    assert maybe_offer_env_import(parent, account_service, environ=blank) is None
    assert not account_service.env_import_offered  # keys set later are still offered at a later start


def test_the_same_key_in_two_variables_is_ticked_once(make_dialog) -> None:
    dialog = make_dialog({"GEMINI_API_KEY": "AIzaSyD-shared-key-0123", "GOOGLE_API_KEY": "AIzaSyD-shared-key-0123"})

    assert [box.isChecked() for box in dialog.checkboxes] == [True, False]
    assert dialog.checkboxes[1].text().endswith("(the same key as GEMINI_API_KEY)")
