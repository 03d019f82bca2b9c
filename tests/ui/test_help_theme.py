"""Help (shortcuts, About, the Help menu) and the light/dark/system themes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QListWidget, QMainWindow

from desktop_app import __version__
from desktop_app.services.paths import AppPaths
from desktop_app.ui.help import AboutDialog, HelpMenu, ShortcutsDialog, shortcut_text
from desktop_app.ui.theme import (
    app_icon,
    apply_theme,
    current_theme,
    dark_palette,
    is_dark,
    light_palette,
)

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "modeldesk home")


@pytest.fixture
def theme(qapp) -> Iterator[QApplication]:
    yield qapp
    apply_theme(qapp, "system")  # the QApplication outlives the test


def window_colour(app: QApplication) -> str:
    return app.palette().color(QPalette.ColorRole.Window).name()


def test_the_shortcuts_dialog_lists_every_shortcut(qtbot) -> None:
    dialog = ShortcutsDialog()
    qtbot.addWidget(dialog)
    dialog.open()

    texts = dialog.texts()
    for keys in ("Ctrl+Enter", "Esc", "Ctrl+N", "Ctrl+1 / Ctrl+2 / Ctrl+3", "F1", "Ctrl+Q"):
        assert keys in texts, keys
    assert "Send the message" in texts and "Stop the reply being written" in texts and "Quit" in texts
    assert shortcut_text(["Ctrl+Return"]) == "Ctrl+Enter"


def test_the_pane_row_follows_the_panes_the_window_has(qtbot) -> None:
    dialog = ShortcutsDialog(pane_titles=["Chat", "Accounts", "Usage", "llama.cpp"])
    qtbot.addWidget(dialog)
    texts = dialog.texts()
    assert "Ctrl+1 / Ctrl+2 / Ctrl+3 / Ctrl+4" in texts and "Show Chat, Accounts, Usage or llama.cpp" in texts


def test_about_shows_the_version_the_licences_and_the_folders(qtbot, paths) -> None:
    dialog = AboutDialog(paths=paths)
    qtbot.addWidget(dialog)
    dialog.open()

    texts = "\n".join(dialog.texts())
    assert f"ModelDesk {__version__}" in texts
    licences = {c.name: c for c in dialog.components}
    # Read from each installed package's metadata, not from a table of ours.
    assert all(c.from_metadata for c in dialog.components), [c for c in dialog.components if not c.from_metadata]
    assert "LGPL-3.0" in licences["Qt and PySide6"].licence
    assert licences["LiteLLM"].licence == "MIT" and licences["qasync"].licence == "BSD-2-Clause"
    assert licences["httpx"].licence == "BSD-3-Clause" and licences["Pygments"].licence == "BSD-2-Clause"
    for name in ("keyring", "platformdirs", "pydantic", "markdown-it-py", "ollama (Python client)"):
        assert licences[name].licence == "MIT", name
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert str(folder) in texts  # shown (HTML-escaped where needed) and linked
    assert "file://" in dialog.folder_labels["logs"].text()
    # QLabel.pixmap() is never None in Qt 6; an unset one is a null pixmap.
    shown = dialog.findChild(QLabel, "aboutIcon").pixmap()
    assert not shown.isNull() and shown.size() == QSize(64, 64)
    assert shown.toImage() == app_icon().pixmap(64, 64).toImage()  # ModelDesk's own icon


def test_dark_changes_the_palette_and_light_and_system_switch_back(theme) -> None:
    before = window_colour(theme)

    apply_theme(theme, "dark")
    assert current_theme(theme) == "dark" and is_dark(theme.palette())
    assert window_colour(theme) == dark_palette().color(QPalette.ColorRole.Window).name() != before

    apply_theme(theme, "light")
    assert not is_dark(theme.palette())
    assert window_colour(theme) == light_palette().color(QPalette.ColorRole.Window).name()

    apply_theme(theme, "dark")
    apply_theme(theme, "system")  # the platform's own palette again (offscreen: light)
    assert current_theme(theme) == "system" and window_colour(theme) == before


def test_a_shown_widget_repaints_in_the_new_palette(qtbot, theme) -> None:
    label = QLabel("hello")
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    apply_theme(theme, "dark")
    qtbot.waitUntil(lambda: is_dark(label.palette()))  # widgets hear of it through a posted event
    apply_theme(theme, "light")
    qtbot.waitUntil(lambda: not is_dark(label.palette()))


def test_style_sheets_that_use_palette_colours_follow_the_theme(qtbot, theme) -> None:
    # The main window's navigation list is styled like this.
    nav = QListWidget(objectName="navigation")
    nav.setStyleSheet("QListWidget#navigation { border: none; background: palette(window); }")
    qtbot.addWidget(nav)
    nav.show()
    qtbot.waitExposed(nav)

    def background() -> str:
        return nav.grab().toImage().pixelColor(4, 4).name()

    apply_theme(theme, "dark")
    assert background() == dark_palette().color(QPalette.ColorRole.Window).name()
    apply_theme(theme, "light")
    assert background() == light_palette().color(QPalette.ColorRole.Window).name()


def test_an_unknown_theme_is_refused(theme) -> None:
    with pytest.raises(ValueError, match="unknown theme"):
        apply_theme(theme, "solarized")


def test_the_icon_is_there() -> None:
    icon = app_icon()
    assert not icon.isNull() and not icon.pixmap(16, 16).isNull() and not icon.pixmap(256, 256).isNull()


def test_the_help_menu_wires_shortcuts_about_debug_and_diagnostics(qtbot, paths) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    shown: list[str] = []
    new_chats: list[bool] = []
    menu = HelpMenu(
        window,
        paths=paths,
        diagnostics=lambda: "ModelDesk diagnostics\nno keys here\n",
        show_pane=shown.append,
        pane_titles=["Chat", "Accounts", "Usage"],
        new_chat=lambda: new_chats.append(True),
    )
    assert [a.shortcut().toString() for a in menu.pane_actions] == ["Ctrl+1", "Ctrl+2", "Ctrl+3"]
    assert menu.shortcuts_action.shortcut().toString() == "F1"
    assert menu.new_chat_action is not None and menu.new_chat_action.shortcut().toString() == "Ctrl+N"

    menu.pane_actions[1].trigger()
    menu.new_chat_action.trigger()
    assert shown == ["Accounts"] and new_chats == [True]

    menu.shortcuts_action.trigger()
    assert isinstance(menu.dialog, ShortcutsDialog) and menu.dialog.isVisible()
    assert "Show Chat, Accounts or Usage" in menu.dialog.texts()
    menu.about_action.trigger()  # replaces the shortcuts dialog
    assert isinstance(menu.dialog, AboutDialog) and menu.dialog.isVisible()
    menu.dialog.reject()
    assert menu.dialog is None

    with qtbot.waitSignal(menu.diagnostics_copied):
        menu.copy_diagnostics_action.trigger()
    assert QGuiApplication.clipboard().text() == "ModelDesk diagnostics\nno keys here\n"
    assert "no keys" in window.statusBar().currentMessage()

    root = logging.getLogger()
    level = root.level
    try:
        menu.debug_action.setChecked(True)
        assert root.level == logging.DEBUG
        menu.debug_action.setChecked(False)
        assert root.level == logging.INFO
    finally:
        root.setLevel(level)


def test_the_view_menu_switches_the_theme_and_remembers_it(qtbot, modeldesk):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from desktop_app.services.settings_store import SettingsStore
    from tests.ui.conftest import run

    menus = [a.text() for a in modeldesk.window.menuBar().actions()]
    assert menus[:2] == ["&File", "&View"] and "&Help" in menus
    run(qtbot, modeldesk.theme_menu.set_theme("dark"))
    window_colour = QApplication.instance().palette().color(QPalette.ColorRole.Window)
    assert window_colour.lightness() < 100
    assert SettingsStore(modeldesk.paths.settings_file).load()[0].theme == "dark"
    run(qtbot, modeldesk.theme_menu.set_theme("light"))
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 150
    run(qtbot, modeldesk.theme_menu.set_theme("system"))


def test_a_theme_and_a_library_folder_changed_together_are_both_remembered(qtbot, modeldesk, tmp_path):
    from desktop_app.services.settings_store import SettingsStore

    def saved():
        return SettingsStore(modeldesk.paths.settings_file).load()[0]

    # Both changes are queued before either is applied, as two signals in one pass of the loop are.
    modeldesk.theme_menu.actions["dark"].trigger()
    modeldesk.gguf_view.folders_changed.emit([str(tmp_path)])
    qtbot.waitUntil(
        lambda: modeldesk.settings.current.gguf_folders == [str(tmp_path)] and saved().gguf_folders == [str(tmp_path)],
        timeout=10_000,
    )

    assert modeldesk.settings.current.theme == "dark" == saved().theme
