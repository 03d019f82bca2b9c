"""The composition root: settings, stores and services first, then the window that shows them.

Nothing slow happens before the first paint. After it: the keyring is probed, the conversation
store opened and conversations listed. LiteLLM is imported on its engine thread when first needed
(a request, a model's details and price) or when the user starts typing a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import httpx

from desktop_app.domain.errors import StorageFailed
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import ChatService, recover_interrupted
from desktop_app.services.http_client import http_client
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.local.gguf import GgufLibrary, default_folders
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.servers import LocalServers
from desktop_app.services.paths import AppPaths
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore, StateStore
from desktop_app.services.shutdown import close_in_order
from desktop_app.ui.common.gc import MainThreadCollector
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.main_window import MainWindow

log = logging.getLogger(__name__)
QUIT_TIMEOUT_S = 5.0  # how long quitting waits for the work in hand before abandoning it


class ModelDeskApp:
    """Owns every service and the window; `start()` after the first paint, `aclose()` on quit."""

    def __init__(
        self,
        *,
        paths: AppPaths,
        secrets: SecretStore | None = None,
        offer_env_import: bool = True,
        window: MainWindow | None = None,
        collector: MainThreadCollector | None = None,
    ) -> None:
        from desktop_app.ui.accounts import AccountsPane
        from desktop_app.ui.chat.pane import ChatPane
        from desktop_app.ui.llamacpp import LlamaCppPane
        from desktop_app.ui.llamacpp.library import GgufLibraryView
        from desktop_app.ui.ollama import OllamaPane
        from desktop_app.ui.usage import UsagePane

        self.paths = paths.ensure()
        self.offer_env_import = offer_env_import
        self.first_run_dialog = None
        self.settings_store = SettingsStore(paths.settings_file)
        settings, self._settings_notice = self.settings_store.load()
        self.settings = SettingsService(store=self.settings_store, settings=settings)
        self.state_store = StateStore(paths.state_file)
        # One HTTP client for every list/check request, with the user's proxy settings; closed on quit.
        self.http = http_client(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self.secrets = secrets or SecretStore()
        self.engine = LiteLLMEngine()
        self.catalog = ModelCatalog(http=self.http, cache_file=paths.model_cache_file, litellm=self.engine.litellm)
        self.catalog.load_cache()
        self.llm = LLMService(engine=self.engine)
        self.store = ConversationStore(paths.database_file)
        self.usage = UsageStore(paths.data_dir / "usage.sqlite3")
        self.states = AccountStates()
        self.accounts = AccountService(
            settings=self.settings, secrets=self.secrets, catalog=self.catalog, states=self.states
        )
        self.llamacpp = LlamaCppService(self.http)
        self.local = LocalServers(
            accounts=self.accounts,
            settings=self.settings,
            secrets=self.secrets,
            llamacpp=self.llamacpp,
            pulls_file=paths.data_dir / "ollama-pulls.json",
        )
        self.dispatcher = Dispatcher(
            llm=self.llm,
            secrets=self.secrets,
            states=self.states,
            settings=lambda: self.settings.current,
            usage=self.usage,
            timeout_s=lambda: self.settings.current.request_timeout_s,
            local_servers=self.llamacpp,
        )
        self.chat = ChatService(
            dispatcher=self.dispatcher,
            store=self.store,
            spill_file=paths.unsaved_replies_file,
            draft_file=paths.composer_draft_file,
        )

        self.chat_pane = ChatPane(chat=self.chat, accounts=self.accounts)
        self.accounts_pane = AccountsPane(accounts=self.accounts)
        self.usage_pane = UsagePane(usage=self.usage, accounts_provider=lambda: self.accounts.accounts)
        self.ollama_pane = OllamaPane(
            ollama=self.local.ollama.first_service(), hosts=self.local.ollama, local=self.local
        )
        self.gguf = GgufLibrary(
            paths.cache_dir / "gguf.json", folders=[*default_folders(), *(Path(f) for f in settings.gguf_folders)]
        )
        self.gguf_view = GgufLibraryView(library=self.gguf, user_folders=settings.gguf_folders)
        self.llamacpp_pane = LlamaCppPane(
            llamacpp=self.llamacpp,
            here=self.local.here,
            local=self.local,
            gguf_files=lambda: self.gguf_view.files,
            binary_setting=settings.llama_server_binary,
            router_dir=paths.cache_dir / "GGUF library",
        )
        # The window may already be on screen (painted before any of this was imported).
        self.window = window or MainWindow()
        panes = (
            ("Chat", self.chat_pane),
            ("Accounts", self.accounts_pane),
            ("Usage", self.usage_pane),
            ("Ollama", self.ollama_pane),
            ("llama.cpp", self.llamacpp_pane),
            ("GGUF files", self.gguf_view),
        )
        for title, pane in panes:
            self.window.add_pane(title, pane)
        self._tasks = TaskOwner("app")
        # Panes talk only through signals connected here.
        self.chat_pane.reply_finished.connect(lambda _outcome: self._tasks.spawn(self.usage_pane.reload()))
        self.chat_pane.accounts_requested.connect(lambda: self.window.show_pane("Accounts"))
        # LiteLLM (~160 MB) loads when first needed; typing a message is the first sign of a request.
        self.chat_pane.typing_started.connect(self.engine.start)
        self.usage_pane.chat_requested.connect(lambda: self.window.show_pane("Chat"))
        for local_pane in (self.ollama_pane, self.llamacpp_pane):
            local_pane.status_message.connect(self.window.statusBar().showMessage)
        self.ollama_pane.chat_requested.connect(
            lambda account_id, name: (self.window.show_pane("Chat"), self.chat_pane.select_model(account_id, name))
        )
        self.llamacpp_pane.chat_requested.connect(lambda: self.window.show_pane("Chat"))
        if collector is not None:
            self.chat_pane.reply_started.connect(collector.hold_old_generations)
            self.chat_pane.reply_finished.connect(lambda _outcome: collector.release_old_generations())
        # The local-server panes ask their servers when first opened, not at start-up.
        self.window.stack.currentChanged.connect(self._on_pane_shown)
        self.gguf_view.scanned.connect(self.llamacpp_pane.reload_gguf_files)
        self.gguf_view.folders_changed.connect(
            lambda folders: self._tasks.spawn(self.settings.update(gguf_folders=folders))
        )
        from PySide6.QtWidgets import QApplication

        from desktop_app.services.diagnostics import collect_diagnostics
        from desktop_app.services.log_control import install as install_log_control
        from desktop_app.ui.help import HelpMenu
        from desktop_app.ui.theme import app_icon, apply_theme
        from desktop_app.ui.window_menus import ThemeMenu, export_proxy_config, restore_window_state

        self.recent_errors = install_log_control()  # keeps the last warnings/errors (scrubbed)
        apply_theme(QApplication.instance(), settings.theme)
        self.window.setWindowIcon(app_icon())
        self.help_menu = HelpMenu(
            self.window,
            paths=self.paths,
            show_pane=self.window.show_pane,
            diagnostics=lambda: collect_diagnostics(
                settings=self.settings.current, secrets=self.secrets, paths=self.paths, recent_errors=self.recent_errors
            ),
            pane_titles=[title for title, _pane in panes],
            new_chat=lambda: (self.window.show_pane("Chat"), self._tasks.spawn(self.chat_pane.new_conversation())),
        )
        self.theme_menu = ThemeMenu(
            self.window, settings=self.settings, current=settings.theme, spawn=self._tasks.spawn
        )
        self.llamacpp_pane.binary_setting_changed.connect(
            lambda path: self._tasks.spawn(self.settings.update(llama_server_binary=path))
        )
        self.window.export_proxy_requested.connect(
            lambda path: self._tasks.spawn(export_proxy_config(self.window, self.accounts, path))
        )
        restore_window_state(self.window, self.state_store)
        self.started = asyncio.Event()

    async def _offer_first_run(self) -> None:
        from desktop_app.ui.welcome import offer_first_run

        self.first_run_dialog = await offer_first_run(self.window, self.accounts, http=self.http)

    def _on_pane_shown(self, _index: int) -> None:
        shown = self.window.stack.currentWidget()
        if shown is self.ollama_pane or shown is self.llamacpp_pane:
            shown.opened()

    async def start(self) -> None:
        """The slow part of start-up; runs after the window has painted once."""
        self.window.add_notice(self._settings_notice or "")
        await self.secrets.start()
        await self.accounts.adopt_header_secrets(self.settings_store.found_header_secrets)
        self.window.add_notice(self.secrets.notice or "")
        self.accounts_pane.refresh_keyring_notice(shown_elsewhere=self.secrets.notice or "")
        with contextlib.suppress(StorageFailed):  # the chat pane says why, and offers a Retry
            await self.store.open()
        self.window.add_notice(getattr(self.store, "notice", None) or "")
        try:
            self.window.add_notice(await self.usage.open() or "")
        except StorageFailed as exc:  # chats go on; only the usage log and budgets wait for it
            self.window.add_notice(f"{exc.message} Usage is not recorded until ModelDesk is restarted.")
        with contextlib.suppress(StorageFailed):  # a store that cannot be written keeps them for later
            await self.chat.restore_spilled()  # before: a reply kept at quit is not "interrupted"
            await recover_interrupted(self.store, self.usage, self.settings.current)
        await self.usage_pane.reload()
        self._tasks.spawn(self.gguf_view.scan())  # on a worker thread; cached by path, size and mtime
        await self.chat_pane.load_conversations(self.settings.current.last_conversation_id)
        await self.chat_pane.restore_draft()
        if not self.accounts.accounts:
            self.window.show_pane("Accounts")
        if self.offer_env_import:
            self._tasks.spawn(self._offer_first_run())
        self.started.set()
        log.info("start-up finished")  # the e2e tests wait for this line before using the window

    async def aclose(self, *, timeout_s: float = QUIT_TIMEOUT_S) -> list[str]:
        """Quit: finish the work in hand (the reply being written is saved as stopped, pulls are
        recorded as paused with their progress), then close every store and client.

        Bounded by `timeout_s`: a step still running then is abandoned, and it and the steps not
        run are named in the log. Returns their names ([] when everything finished).
        """
        from desktop_app.ui.window_menus import save_window_state

        steps = [
            ("window state", lambda: save_window_state(self.window, self.state_store)),
            ("chat", self.chat_pane.aclose),
            ("accounts pane", self.accounts_pane.aclose),
            ("usage pane", self.usage_pane.aclose),
            ("llama.cpp pane", self.llamacpp_pane.aclose),
            ("Ollama pane", self.ollama_pane.aclose),
            ("GGUF files", self.gguf_view.aclose),
            ("local servers", self.local.aclose),  # stops the llama-server started here; pulls paused
            ("background tasks", self._tasks.aclose),
            ("last conversation", self._remember_last_conversation),
            ("conversation store", self.store.close),
            ("usage store", self.usage.close),
            ("keyring", self.secrets.close),
            ("HTTP client", self.http.aclose),
            # Still importing LiteLLM is no work of the user's: its daemon thread is left after 1 s.
            ("LiteLLM engine", lambda: asyncio.to_thread(self.engine.stop, 1.0)),
        ]
        return await close_in_order(steps, timeout_s=timeout_s, log=log)

    async def _remember_last_conversation(self) -> None:
        current = self.chat_pane.current_conversation
        if current is not None and self.settings.current.last_conversation_id != current.id:
            await self.settings.update(last_conversation_id=current.id)
