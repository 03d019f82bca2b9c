"""What the window's menus do beyond showing a pane: the View > Theme menu, the File-menu proxy
export, conversations' export and import (`library_menu`), and the window geometry kept between runs (in the state file, apart from the settings).
`add_menus` puts them, the Help menu and the theme on the window.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import StateStore
from desktop_app.ui.theme import app_icon, apply_theme

if TYPE_CHECKING:
    from desktop_app.services.chat.library import ConversationLibrary
    from desktop_app.services.local.llamacpp_install import EngineInstaller
    from desktop_app.services.paths import AppPaths
    from desktop_app.ui.chat.pane import ChatPane
    from desktop_app.ui.help import HelpMenu
    from desktop_app.ui.library_menu import LibraryMenu
    from desktop_app.ui.llamacpp.engine_dialog import LocalEngineDialog
    from desktop_app.ui.main_window import MainWindow

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))


class ThemeMenu:
    """View > Theme: the chosen theme applies at once and is remembered in the settings."""

    def __init__(
        self,
        window: QMainWindow,
        *,
        settings: SettingsService,
        current: str,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self._settings = settings
        menu = window.menuBar().addMenu("&View")
        theme_menu = menu.addMenu("Theme")
        group = QActionGroup(window)
        self.actions = {}
        for mode, text in THEMES:
            action = theme_menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(mode == current)
            group.addAction(action)
            action.triggered.connect(lambda _checked=False, m=mode: spawn(self.set_theme(m)))
            self.actions[mode] = action
        # Keep View next to File, before Help.
        window.menuBar().insertMenu(window.menuBar().actions()[1], menu)

    async def set_theme(self, mode: str) -> None:
        apply_theme(QApplication.instance(), mode)
        self.actions[mode].setChecked(True)
        await self._settings.update(theme=mode)


class SettingsMenu:
    """Settings > Local engine…: the engine box in a window of its own (built when first asked for)."""

    def __init__(self, window: QMainWindow, *, engines: EngineInstaller, binary_setting: Callable[[], str]) -> None:
        self._window, self._engines, self._binary_setting = window, engines, binary_setting
        self.engine_dialog: LocalEngineDialog | None = None
        bar = window.menuBar()
        self.menu = QMenu("&Settings", bar)
        self.local_engine_action = self.menu.addAction("Local engine…")
        self.local_engine_action.setToolTip("The llama-server ModelDesk runs: install llama.cpp or update it")
        self.local_engine_action.triggered.connect(self.show_local_engine)
        help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
        bar.insertMenu(help_action, self.menu) if help_action is not None else bar.addMenu(self.menu)

    def show_local_engine(self) -> LocalEngineDialog:
        if self.engine_dialog is None:
            from desktop_app.ui.llamacpp.engine_dialog import LocalEngineDialog

            self.engine_dialog = LocalEngineDialog(
                engines=self._engines, binary_setting=self._binary_setting, parent=self._window
            )
        if self.engine_dialog.isVisible():  # behind the main window: brought to the front
            self.engine_dialog.raise_()
            self.engine_dialog.activateWindow()
        else:
            self.engine_dialog.show()
        return self.engine_dialog

    async def aclose(self) -> None:
        if self.engine_dialog is not None:
            await self.engine_dialog.aclose()


async def export_proxy_config(window: QMainWindow, accounts: AccountService, path: str) -> None:
    """File > Export as LiteLLM Proxy config: the outcome is said in the status bar."""
    try:
        names = await accounts.export_proxy_config(path)
    except OSError as exc:
        window.statusBar().showMessage(f"Could not write {path}: {exc.strerror}.")
        return
    window.statusBar().showMessage(f"Wrote {path}. Set {', '.join(names)} on the proxy host.")


def restore_window_state(window: QMainWindow, store: StateStore) -> None:
    state = store.load()
    geometry = state.get("geometry")
    if isinstance(geometry, list) and len(geometry) == 4 and all(isinstance(v, int) for v in geometry):
        x, y, w, h = geometry
        window.setGeometry(x, y, max(w, 640), max(h, 480))


async def save_window_state(window: QMainWindow, store: StateStore) -> None:
    geo = window.geometry()
    store.save({"geometry": [geo.x(), geo.y(), geo.width(), geo.height()]})


def add_menus(
    window: MainWindow,
    *,
    paths: AppPaths,
    settings: SettingsService,
    state_store: StateStore,
    accounts: AccountService,
    diagnostics: Callable[[], str],
    new_chat: Callable[[], object],
    spawn: Callable[[Coroutine[Any, Any, None]], object],
    library: ConversationLibrary,
    chat_pane: ChatPane,
    engines: EngineInstaller | None = None,
) -> tuple[HelpMenu, ThemeMenu, LibraryMenu, SettingsMenu | None]:
    """The theme and icon, Help and View > Theme, File > Export and Import, Settings (with `engines`),
    and the geometry of the last run."""
    from desktop_app.ui.help import HelpMenu
    from desktop_app.ui.library_menu import LibraryMenu
    from desktop_app.ui.panes import PANE_TITLES

    apply_theme(QApplication.instance(), settings.current.theme)
    window.setWindowIcon(app_icon())
    help_menu = HelpMenu(
        window,
        paths=paths,
        show_pane=window.show_pane,
        diagnostics=diagnostics,
        pane_titles=PANE_TITLES,
        new_chat=new_chat,
    )
    theme_menu = ThemeMenu(window, settings=settings, current=settings.current.theme, spawn=spawn)
    settings_menu = (
        SettingsMenu(window, engines=engines, binary_setting=lambda: settings.current.llama_server_binary)
        if engines is not None
        else None
    )
    window.export_proxy_requested.connect(lambda path: spawn(export_proxy_config(window, accounts, path)))
    library_menu = LibraryMenu(window, library=library, chat_pane=chat_pane, spawn=spawn)
    restore_window_state(window, state_store)
    return help_menu, theme_menu, library_menu, settings_menu
