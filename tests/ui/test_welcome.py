"""The first-run welcome: what discovery found, ticked; nothing added until "Add selected"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts.accounts import find_env_keys
from desktop_app.services.accounts.secrets import SERVICE
from desktop_app.services.local.discovery import Discovery, FoundServer, GgufFolder
from desktop_app.ui.welcome import (
    LLAMA_SERVER_LABEL,
    OLLAMA_LABEL,
    WelcomeDialog,
    offer_welcome,
)
from tests.ui.conftest import WAIT_MS, run, saved_settings
from tests.unit.test_discovery import as_json, fake_server, touch

ANTHROPIC_KEY = "sk-ant-api03-Zq8RkT2mWc9LpX4vHn7YbJ3sDf6GaE1uabcd"
OPENAI_KEY = "sk-proj-Mv3Nq7Wz2Kx9Rb4Tc8Lp1Hs6Jd5Fg0Ye"
KEYS_ENV = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY}

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def found(tmp_path: Path) -> Discovery:
    return Discovery(
        ollama=FoundServer("http://127.0.0.1:11434", "0.6.2"),
        llama_server=FoundServer("http://127.0.0.1:8080"),
        gguf_folders=(GgufFolder(tmp_path / "llama.cpp", 3),),
        env_keys=tuple(find_env_keys(KEYS_ENV)),
    )


@pytest.fixture
def make_dialog(account_service, add_widget) -> Callable[[Discovery], WelcomeDialog]:
    def make(discovery: Discovery) -> WelcomeDialog:
        dialog = add_widget(WelcomeDialog(discovery, accounts=account_service))
        dialog.open()
        return dialog

    return make


def every_text(dialog: QWidget) -> str:
    texts = [dialog.windowTitle(), dialog.toolTip()]
    for widget in dialog.findChildren(QWidget):
        texts += [widget.toolTip(), widget.accessibleName(), widget.whatsThis()]
        if isinstance(widget, (QLabel, QAbstractButton)):
            texts.append(widget.text())
    return "\n".join(texts)


def test_everything_found_is_listed_and_ticked_but_nothing_is_added(
    make_dialog, found, account_service, settings_file, memory_keyring
) -> None:
    dialog = make_dialog(found)

    assert dialog.isVisible() and dialog.windowTitle() == "Welcome to ModelDesk"
    assert [box.text() for box in dialog.checkboxes] == [
        "Ollama 0.6.2 at 127.0.0.1:11434",
        "llama.cpp server at 127.0.0.1:8080",
        "Anthropic — ANTHROPIC_API_KEY — sk-ant…abcd",
        "OpenAI — OPENAI_API_KEY — sk-pro…g0Ye",
    ]
    assert all(box.isChecked() for box in dialog.checkboxes)
    assert dialog.gguf_label is not None and "3 GGUF model files in" in dialog.gguf_label.text()
    assert dialog.add_button.isEnabled() and dialog.skip_button.isEnabled()
    # Ticked is not added.
    assert account_service.accounts == [] and memory_keyring.entries == {} and not settings_file.exists()
    texts = every_text(dialog)
    for secret in (ANTHROPIC_KEY, OPENAI_KEY):
        assert secret not in texts and secret[6:-4] not in texts


def test_add_selected_adds_exactly_the_ticked_items(
    qtbot, make_dialog, found, account_service, settings_file, memory_keyring
) -> None:
    dialog = make_dialog(found)
    dialog.checkboxes[1].setChecked(False)  # not the llama.cpp server
    dialog.checkboxes[3].setChecked(False)  # not the OpenAI key

    with qtbot.waitSignal(dialog.accounts_added, timeout=WAIT_MS) as added:
        dialog.add_button.click()

    ollama, anthropic = account_service.accounts
    assert added.args == [[ollama.id, anthropic.id]]
    assert (ollama.provider_id, ollama.label, ollama.base_url) == ("ollama", OLLAMA_LABEL, None)
    assert (anthropic.provider_id, anthropic.label) == ("anthropic", "Anthropic (ANTHROPIC_API_KEY)")
    assert memory_keyring.entries == {(SERVICE, anthropic.id): ANTHROPIC_KEY}
    saved = saved_settings(settings_file)
    assert [a.id for a in saved.accounts] == [ollama.id, anthropic.id] and saved.env_import_offered
    assert ANTHROPIC_KEY.encode() not in settings_file.read_bytes()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert dialog.selected_keys() == []  # the secrets are let go once answered


def test_servers_only_still_records_the_answer(qtbot, make_dialog, found, account_service, memory_keyring) -> None:
    dialog = make_dialog(found)
    for box in dialog.key_boxes:
        box.setChecked(False)

    with qtbot.waitSignal(dialog.accounts_added, timeout=WAIT_MS):
        dialog.add_button.click()

    assert [(a.provider_id, a.label) for a in account_service.accounts] == [
        ("ollama", OLLAMA_LABEL),
        ("llamacpp", LLAMA_SERVER_LABEL),
    ]
    assert memory_keyring.entries == {} and account_service.env_import_offered


def test_add_is_disabled_with_nothing_ticked(make_dialog, found) -> None:
    dialog = make_dialog(found)
    for box in dialog.checkboxes:
        box.setChecked(False)
    assert not dialog.add_button.isEnabled()
    dialog.checkboxes[0].setChecked(True)
    assert dialog.add_button.isEnabled()


def test_skip_adds_nothing_and_is_not_asked_again(
    qtbot, make_dialog, parent, found, account_service, memory_keyring
) -> None:
    dialog = make_dialog(found)
    with qtbot.waitSignal(dialog.skipped, timeout=WAIT_MS):
        dialog.skip_button.click()

    assert account_service.accounts == [] and memory_keyring.entries == {}
    assert account_service.env_import_offered
    assert run(qtbot, offer_welcome(parent, account_service, environ=KEYS_ENV)) is None


def test_a_server_already_added_is_shown_but_not_offered(qtbot, make_dialog, found, account_service) -> None:
    run(qtbot, account_service.save_account(Account(provider_id="ollama", label="Mine")))
    dialog = make_dialog(found)

    ollama_box = dialog.checkboxes[0]
    assert ollama_box.text().endswith("(already added)")
    assert not ollama_box.isEnabled() and not ollama_box.isChecked()
    assert [a.provider_id for a in dialog.selected_accounts()] == ["llamacpp"]


def test_first_run_discovers_real_loopback_servers_and_lists_them(
    qtbot, qloop, parent, account_service, tmp_path, memory_keyring
) -> None:
    home = tmp_path / "home"
    touch(home / ".cache" / "llama.cpp" / "gemma-3-270m-it-Q8_0.gguf")
    with (
        fake_server({"/api/version": as_json(200, {"version": "0.6.2"})}) as ollama,
        fake_server({"/health": as_json(200, {"status": "ok"})}) as llama,
    ):
        environ = KEYS_ENV | {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "OLLAMA_HOST": ollama.removeprefix("http://"),
            "LLAMA_ARG_PORT": llama.rsplit(":", 1)[1],
        }
        dialog = run(qtbot, offer_welcome(parent, account_service, environ=environ))

    assert isinstance(dialog, WelcomeDialog) and dialog.isVisible()
    assert [box.text() for box in dialog.checkboxes] == [
        f"Ollama 0.6.2 at {ollama.removeprefix('http://')}",
        f"llama.cpp server at {llama.removeprefix('http://')}",
        "Anthropic — ANTHROPIC_API_KEY — sk-ant…abcd",
        "OpenAI — OPENAI_API_KEY — sk-pro…g0Ye",
    ]
    assert dialog.gguf_label is not None and "1 GGUF model file in" in dialog.gguf_label.text()
    assert account_service.accounts == [] and memory_keyring.entries == {}

    with qtbot.waitSignal(dialog.accounts_added, timeout=WAIT_MS):
        dialog.add_button.click()
    ollama_account, llama_account, *_keys = account_service.accounts
    # Servers on other ports than the providers' defaults keep their address.
    assert ollama_account.base_url == ollama and llama_account.base_url == f"{llama}/v1"
    assert len(account_service.accounts) == 4
    run(qtbot, dialog.aclose())


def test_no_dialog_when_it_is_not_a_first_run_or_nothing_was_found(qtbot, parent, account_service, tmp_path) -> None:
    with fake_server({}) as nothing:
        port = nothing.rsplit(":", 1)[1]
        quiet = {"HOME": str(tmp_path), "OLLAMA_HOST": f"127.0.0.1:{port}", "LLAMA_ARG_PORT": port}
        assert run(qtbot, offer_welcome(parent, account_service, environ=quiet)) is None
        assert not account_service.env_import_offered  # a key set later is still offered

        run(qtbot, account_service.save_account(Account(provider_id="openai", label="Existing")))
        assert run(qtbot, offer_welcome(parent, account_service, environ=quiet | KEYS_ENV)) is None


class OfferStandIn(QWidget):
    """What the welcome uses of a `LocalModelOffer` (tests/ui/test_first_run.py drives the real one)."""

    ready = Signal(str, str)
    running_changed = Signal(bool)
    running = False


def test_with_nothing_here_the_local_model_offer_comes_first(qtbot, parent, account_service, tmp_path) -> None:
    offered: list[QWidget] = []

    async def local_offer() -> QWidget:
        offered.append(OfferStandIn())
        return offered[-1]

    with fake_server({}) as nothing:
        port = nothing.rsplit(":", 1)[1]
        quiet = {"HOME": str(tmp_path), "OLLAMA_HOST": f"127.0.0.1:{port}", "LLAMA_ARG_PORT": port}
        dialog = run(qtbot, offer_welcome(parent, account_service, environ=quiet, local_offer=local_offer))
        assert isinstance(dialog, WelcomeDialog) and dialog.local_offer is offered[0]
        layout = dialog.layout()
        assert layout.indexOf(offered[0]) < layout.indexOf(dialog.status_label)
        assert not dialog.add_button.isVisible() and dialog.skip_button.text() == "Not now"
        with qtbot.waitSignal(dialog.skipped, timeout=WAIT_MS):
            dialog.skip_button.click()


def test_a_model_server_running_here_is_offered_instead_of_a_local_model(
    qtbot, parent, account_service, tmp_path
) -> None:
    async def local_offer() -> QWidget:
        raise AssertionError("not asked for when a server runs here")

    with fake_server({"/api/version": as_json(200, {"version": "0.6.2"})}) as ollama:
        environ = {"HOME": str(tmp_path), "OLLAMA_HOST": ollama.removeprefix("http://"), "LLAMA_ARG_PORT": "9"}
        dialog = run(qtbot, offer_welcome(parent, account_service, environ=environ, local_offer=local_offer))
    assert isinstance(dialog, WelcomeDialog) and dialog.local_offer is None
    run(qtbot, dialog.aclose())
