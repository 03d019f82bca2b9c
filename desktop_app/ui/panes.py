"""The window's panes and the signals between them.

Chat (shown first) and GGUF files (its scan feeds llama.cpp) are built at once; the other panes,
and their modules, when first shown or asked for (`window.pane(title)`), each with its connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QWidget

from desktop_app.ui.chat.pane import ChatPane
from desktop_app.ui.llamacpp.library import GgufLibraryView

if TYPE_CHECKING:
    from desktop_app.services.accounts.accounts import AccountService
    from desktop_app.services.accounts.org_usage import OrgUsageService
    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.accounts.usage import UsageStore
    from desktop_app.services.chat.context import ContextCounter
    from desktop_app.services.chat.presets import PresetStore
    from desktop_app.services.chat.service import ChatService
    from desktop_app.services.local.gguf import GgufLibrary
    from desktop_app.services.local.hf_downloads import HubDownloads
    from desktop_app.services.local.hf_hub import HubClient
    from desktop_app.services.local.llamacpp import LlamaCppService
    from desktop_app.services.local.llamacpp_install import EngineInstaller
    from desktop_app.services.local.servers import LocalServers
    from desktop_app.services.settings import SettingsService
    from desktop_app.ui.common.gc import MainThreadCollector
    from desktop_app.ui.main_window import MainWindow

PANE_TITLES = ("Chat", "Accounts", "Usage", "Ollama", "llama.cpp", "GGUF files", "Discover")
Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]


class Panes:
    """Puts every pane's title in `window`; panes talk only through the signals connected here."""

    def __init__(
        self,
        window: MainWindow,
        *,
        chat: ChatService,
        presets: PresetStore,
        context: ContextCounter,
        accounts: AccountService,
        secrets: SecretStore,
        usage: UsageStore,
        local: LocalServers,
        llamacpp: LlamaCppService,
        gguf: GgufLibrary,
        settings: SettingsService,
        router_dir: Path,
        spawn: Spawn,
        collector: MainThreadCollector | None = None,
        engines: EngineInstaller | None = None,
        hub: HubClient | None = None,
        hub_downloads: HubDownloads | None = None,
        org: OrgUsageService | None = None,
    ) -> None:
        self._window = window
        self._accounts = accounts
        self._secrets = secrets
        self._usage = usage
        self._org = org
        self._local = local
        self._llamacpp = llamacpp
        self._settings = settings
        self._router_dir = router_dir
        self._engines = engines
        self._hub, self._hub_downloads = hub, hub_downloads
        self._spawn = spawn
        self.chat = ChatPane(chat=chat, accounts=accounts, presets=presets, context=context)
        self.gguf_view = GgufLibraryView(library=gguf, user_folders=settings.current.gguf_folders)
        builders: dict[str, QWidget | Callable[[], QWidget]] = {
            "Chat": self.chat,
            "Accounts": self._build_accounts,
            "Usage": self._build_usage,
            "Ollama": self._build_ollama,
            "llama.cpp": self._build_llamacpp,
            "GGUF files": self.gguf_view,
            "Discover": self._build_discover,
        }
        for title in PANE_TITLES:
            window.add_pane(title, builders[title])
        self._opened_when_shown: list[Any] = []  # the local-server panes ask their servers when first opened
        window.stack.currentChanged.connect(self._on_pane_shown)

        self.chat.reply_finished.connect(self._on_chat_reply_finished)
        self.chat.accounts_requested.connect(lambda: window.show_pane("Accounts"))
        if collector is not None:
            self.chat.reply_started.connect(collector.hold_old_generations)
            self.chat.reply_finished.connect(lambda _outcome: collector.release_old_generations())
        self.gguf_view.folders_changed.connect(lambda folders: spawn(settings.update(gguf_folders=folders)))

    def built(self, title: str) -> Any:
        """The pane `title` if it has been built (None: not shown yet, nothing to refresh or close)."""
        return self._window.built_pane(title)

    def _on_pane_shown(self, _index: int) -> None:
        shown = self._window.stack.currentWidget()
        if any(shown is pane for pane in self._opened_when_shown):
            shown.opened()

    def _on_chat_reply_finished(self, _outcome: str) -> None:
        if (usage_pane := self.built("Usage")) is not None:
            self._spawn(usage_pane.reload())

    # --- built when first shown ----------------------------------------------------------------

    def _build_accounts(self) -> QWidget:
        from desktop_app.ui.accounts import AccountsPane

        pane = AccountsPane(accounts=self._accounts, org=self._org)
        pane.refresh_keyring_notice(shown_elsewhere=self._secrets.notice or "")
        if pane.admin_key_field is not None:
            pane.admin_key_field.key_changed.connect(self._on_admin_key_changed)
        return pane

    def _on_admin_key_changed(self, _account_id: str) -> None:
        usage_pane = self.built("Usage")
        if usage_pane is not None and usage_pane.org_panel is not None:
            usage_pane.org_panel.request_reload(usage_pane.days)

    def _build_usage(self) -> QWidget:
        from desktop_app.ui.usage import UsagePane

        pane = UsagePane(usage=self._usage, accounts_provider=lambda: self._accounts.accounts, org=self._org)
        if pane.org_panel is not None:
            self._spawn(pane.org_panel.reload(pane.days))
        pane.chat_requested.connect(lambda: self._window.show_pane("Chat"))
        # Not painted until its first reload is in, so its "no usage yet" state does not flash by
        # (before the store is open the reload finds nothing; start-up reloads it then).
        pane.setUpdatesEnabled(False)
        self._spawn(pane.reload()).add_done_callback(lambda _task: pane.setUpdatesEnabled(True))
        return pane

    def _build_ollama(self) -> QWidget:
        from desktop_app.ui.ollama import OllamaPane

        pane = OllamaPane(ollama=self._local.ollama.first_service(), hosts=self._local.ollama, local=self._local)
        pane.status_message.connect(self._window.statusBar().showMessage)
        pane.chat_requested.connect(
            lambda account_id, name: (self._window.show_pane("Chat"), self.chat.select_model(account_id, name))
        )
        self._opened_when_shown.append(pane)
        return pane

    def _build_llamacpp(self) -> QWidget:
        from desktop_app.ui.llamacpp.pane import LlamaCppPane

        pane = LlamaCppPane(
            llamacpp=self._llamacpp,
            here=self._local.here,
            local=self._local,
            gguf_files=lambda: self.gguf_view.files,
            binary_setting=self._settings.current.llama_server_binary,
            router_dir=self._router_dir,
            engines=self._engines,
        )
        pane.status_message.connect(self._window.statusBar().showMessage)
        pane.chat_requested.connect(lambda: self._window.show_pane("Chat"))
        pane.binary_setting_changed.connect(lambda path: self._spawn(self._settings.update(llama_server_binary=path)))
        self.gguf_view.scanned.connect(pane.reload_gguf_files)
        self._opened_when_shown.append(pane)
        return pane

    def _build_discover(self) -> QWidget:
        from desktop_app.ui.discover import DiscoverPane

        assert self._hub is not None and self._hub_downloads is not None
        pane = DiscoverPane(hub=self._hub, downloads=self._hub_downloads, run_model=self._run_gguf)
        pane.status_message.connect(self._window.statusBar().showMessage)
        pane.downloaded.connect(lambda _key: self._spawn(self.gguf_view.scan()))
        self._opened_when_shown.append(pane)
        return pane

    async def _run_gguf(self, path: Path) -> str:
        """Discover's Run: the llama.cpp pane serves the file, and the chat opens with it picked."""
        from desktop_app.ui.llamacpp.serve import serve_file

        served = await serve_file(self._window.pane("llama.cpp"), path)
        if not served.error:
            self._window.show_pane("Chat")
            self.chat.select_model(served.account_id, served.model)
        return served.error
