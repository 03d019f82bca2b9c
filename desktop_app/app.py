"""The composition root: settings, stores and services first, then the window that shows them.

Nothing slow happens before the first paint. After it (`start()`): the keyring is probed, the
stores opened, conversations listed (`lifecycle.py`). LiteLLM is imported on its engine thread when
first needed (a request, a model's details not kept yet) or when the user starts typing a message.
The panes not on screen are built when first shown (`ui/panes.py`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.lifecycle import open_after_first_paint, quit_steps
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.health import HealthChecks
from desktop_app.services.accounts.org_usage import OrgUsageService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.context import ContextCounter
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.library import ConversationLibrary
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.presets import PresetStore
from desktop_app.services.chat.service import ChatService
from desktop_app.services.chat.titles import Titles
from desktop_app.services.http_client import http_client
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.local.gguf import GgufLibrary, default_folders
from desktop_app.services.local.hf_downloads import HubDownloads
from desktop_app.services.local.hf_hub import HubClient, token_from_accounts
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_install import EngineInstaller
from desktop_app.services.local.servers import LocalServers
from desktop_app.services.paths import AppPaths
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore, StateStore
from desktop_app.services.shutdown import close_in_order
from desktop_app.services.telemetry import Telemetry
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
        from desktop_app.ui.panes import Panes

        self.paths = paths.ensure()
        self.offer_env_import = offer_env_import
        self.first_run_dialog = None
        self.settings_store = SettingsStore(paths.settings_file)
        settings, self.settings_notice = self.settings_store.load()
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
        self.health = HealthChecks(accounts=self.accounts, states=self.states, settings=lambda: self.settings.current)
        self.settings.on_changed(
            lambda _s, changed: self.health.settings_changed() if "health_check_minutes" in changed else None
        )
        # The providers' own usage, costs and keys, for accounts that hold an organisation admin key.
        self.org = OrgUsageService(
            http=self.http, secrets=self.secrets, accounts=lambda: self.settings.current.accounts, usage=self.usage
        )
        self.engines = EngineInstaller(self.http, paths.data_dir)
        self.llamacpp = LlamaCppService(
            self.http,
            installed_binary=lambda: engine.binary if (engine := self.engines.current()) else None,
            served=self.engines.served,  # an update that served a model replaces the older installs
        )
        self.local = LocalServers(
            accounts=self.accounts,
            settings=self.settings,
            secrets=self.secrets,
            llamacpp=self.llamacpp,
            pulls_file=paths.data_dir / "ollama-pulls.json",
        )
        # Settings > Telemetry export: spans of each attempt to the user's OTLP endpoint; off by default.
        self.telemetry = Telemetry(settings=self.settings, secrets=self.secrets)
        self.dispatcher = Dispatcher(
            llm=self.llm,
            secrets=self.secrets,
            states=self.states,
            settings=lambda: self.settings.current,
            usage=self.usage,
            timeout_s=lambda: self.settings.current.request_timeout_s,
            local_servers=self.llamacpp,
            telemetry=self.telemetry,
            context_window=self._context_window,
        )
        attachments = AttachmentStore(paths.attachments_dir)
        self.chat = ChatService(
            dispatcher=self.dispatcher,
            store=self.store,
            spill_file=paths.unsaved_replies_file,
            draft_file=paths.composer_draft_file,
            attachments=attachments,
            model_info=self.accounts.model_info,
            titles=Titles(dispatcher=self.dispatcher, store=self.store, settings=self.settings),
        )
        self.library = ConversationLibrary(store=self.store, attachments=attachments)  # export and import
        self.presets = PresetStore(paths.presets_file)
        self.context = ContextCounter(engine=self.engine, history=self.chat.history)
        self.gguf = GgufLibrary(
            paths.cache_dir / "gguf.json", folders=[*default_folders(), *(Path(f) for f in settings.gguf_folders)]
        )
        # Hugging Face: search and read repos (HF_ENDPOINT honoured), download GGUF files into the
        # standard Hub cache (which the GGUF library lists), resumable across restarts.
        self.hub = HubClient(self.http, token=token_from_accounts(lambda: self.settings.current.accounts, self.secrets))
        self.hub_downloads = HubDownloads(
            self.hub, self.http, ledger_file=paths.data_dir / "hub-downloads.json", library=self.gguf
        )
        # The window may already be on screen (painted before any of this was imported).
        self.window = window or MainWindow()
        self.tasks = TaskOwner("app")
        self.spawn = self.tasks.spawn
        self.panes = Panes(
            self.window,
            chat=self.chat,
            presets=self.presets,
            context=self.context,
            accounts=self.accounts,
            secrets=self.secrets,
            usage=self.usage,
            local=self.local,
            llamacpp=self.llamacpp,
            gguf=self.gguf,
            settings=self.settings,
            router_dir=paths.cache_dir / "GGUF library",
            spawn=self.spawn,
            collector=collector,
            engines=self.engines,
            hub=self.hub,
            hub_downloads=self.hub_downloads,
            org=self.org,
        )
        self.chat_pane, self.gguf_view = self.panes.chat, self.panes.gguf_view
        # LiteLLM (~150 MB) loads when first needed; typing a message is the first sign of a request.
        self.chat_pane.typing_started.connect(self.engine.start)
        from desktop_app.services.diagnostics import collect_diagnostics
        from desktop_app.services.log_control import install as install_log_control
        from desktop_app.ui.window_menus import add_menus

        self.recent_errors = install_log_control()  # keeps the last warnings/errors (scrubbed)
        self.help_menu, self.theme_menu, self.library_menu, self.settings_menu = add_menus(
            self.window,
            paths=self.paths,
            settings=self.settings,
            state_store=self.state_store,
            accounts=self.accounts,
            diagnostics=lambda: collect_diagnostics(
                settings=self.settings.current, secrets=self.secrets, paths=self.paths, recent_errors=self.recent_errors
            ),
            new_chat=lambda: (self.window.show_pane("Chat"), self.spawn(self.chat_pane.new_conversation())),
            spawn=self.spawn,
            library=self.library,
            chat_pane=self.chat_pane,
            engines=self.engines,  # Settings > Local engine…
        )
        from desktop_app.ui.telemetry_dialog import TelemetryMenu

        self.telemetry_menu = TelemetryMenu(self.window, telemetry=self.telemetry, spawn=self.spawn)
        self.started = asyncio.Event()

    # Built when first shown or asked for (Chat and GGUF files are built at once).
    accounts_pane = property(lambda self: self.window.pane("Accounts"))
    usage_pane = property(lambda self: self.window.pane("Usage"))
    ollama_pane = property(lambda self: self.window.pane("Ollama"))
    llamacpp_pane = property(lambda self: self.window.pane("llama.cpp"))
    discover_pane = property(lambda self: self.window.pane("Discover"))

    async def _context_window(self, account: Account, model: str) -> int | None:
        """What LiteLLM's map says `model` on `account` takes, for a route's context-too-long moves."""
        return (await self.catalog.model_info(account, model)).context_window

    async def start(self) -> None:
        """The slow part of start-up; runs after the window has painted once."""
        await open_after_first_paint(self)
        self.health.start()  # waits without checking while the setting is off (the default)
        self.started.set()
        log.info("start-up finished")  # the e2e tests wait for this line before using the window

    async def aclose(self, *, timeout_s: float = QUIT_TIMEOUT_S) -> list[str]:
        """Quit: finish the work in hand, then close every store and client (`quit_steps`).

        Bounded by `timeout_s`: a step still running then is abandoned, and it and the steps not
        run are named in the log. Returns their names ([] when everything finished).
        """
        return await close_in_order(quit_steps(self), timeout_s=timeout_s, log=log)
