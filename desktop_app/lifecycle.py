"""What `ModelDeskApp` does after the first paint (`open_after_first_paint`) and, in order, on quit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from desktop_app.domain.errors import StorageFailed
from desktop_app.services.chat.service import recover_interrupted

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop_app.app import ModelDeskApp


async def open_after_first_paint(app: ModelDeskApp) -> None:
    """Keyring, stores and conversations; the Accounts pane when there is no account yet."""
    window, panes = app.window, app.panes
    window.add_notice(app.settings_notice or "")
    await app.secrets.start()
    await app.accounts.adopt_header_secrets(app.settings_store.found_header_secrets)
    await app.telemetry.configure()  # nothing at all while export is off
    window.add_notice(app.secrets.notice or "")
    if (accounts_pane := panes.built("Accounts")) is not None:  # one built later is told when it is
        accounts_pane.refresh_keyring_notice(shown_elsewhere=app.secrets.notice or "")
    with contextlib.suppress(StorageFailed):  # the chat pane says why, and offers a Retry
        await app.store.open()
    window.add_notice(getattr(app.store, "notice", None) or "")
    try:
        window.add_notice(await app.usage.open() or "")
    except StorageFailed as exc:  # chats go on; only the usage log and budgets wait for it
        window.add_notice(f"{exc.message} Usage is not recorded until ModelDesk is restarted.")
    with contextlib.suppress(StorageFailed):  # a store that cannot be written keeps them for later
        await app.chat.restore_spilled()  # before: a reply kept at quit is not "interrupted"
        await recover_interrupted(app.store, app.usage, app.settings.current)
    if (usage_pane := panes.built("Usage")) is not None:  # one built later reloads when it is
        await usage_pane.reload()
    app.spawn(panes.gguf_view.scan())  # on a worker thread; cached by path, size and mtime
    await app.presets.load()
    await panes.chat.load_conversations(app.settings.current.last_conversation_id)
    await panes.chat.restore_draft()
    if not app.accounts.accounts:
        window.show_pane("Accounts")
    if app.offer_env_import:
        app.spawn(offer_first_run(app))


async def offer_first_run(app: ModelDeskApp) -> None:
    from desktop_app.ui.welcome import offer_first_run

    app.first_run_dialog = await offer_first_run(
        app.window, app.accounts, http=app.http, local_offer=lambda: local_model_offer(app)
    )


async def local_model_offer(app: ModelDeskApp) -> QWidget | None:
    """The welcome's "Chat with a local model now": the starter model for this machine, set up
    with the app's engine installer and Hub downloads, started as the llama.cpp pane starts a
    GGUF file, then picked in the chat. None when no starter model fits this machine."""
    from desktop_app.domain.starter import pick_starter
    from desktop_app.services.local.hardware import detect_hardware
    from desktop_app.ui.first_run import LocalModelOffer

    pick = pick_starter(await detect_hardware())
    if pick is None:
        return None
    offer = LocalModelOffer(
        pick,
        engines=app.engines,
        hub=app.hub,
        downloads=app.hub_downloads,
        serve=lambda path, ctx: app.window.pane("llama.cpp").serve_for_chat(path, ctx=ctx),
        binary_setting=lambda: app.settings.current.llama_server_binary,
    )
    offer.ready.connect(lambda account_id, model: app.chat_pane.select_model(account_id, model))
    return offer


def quit_steps(app: ModelDeskApp) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """Quitting's steps, in order: the work in hand first (the reply being written is saved as
    stopped, pulls are recorded as paused with their progress), then every store and client."""
    from desktop_app.ui.window_menus import save_window_state

    def close_pane(title: str) -> Callable[[], Awaitable[object]]:
        async def close() -> None:
            if (pane := app.panes.built(title)) is not None:  # a pane never shown has nothing to close
                await pane.aclose()

        return close

    return [
        ("window state", lambda: save_window_state(app.window, app.state_store)),
        ("chat", app.panes.chat.aclose),
        ("accounts pane", close_pane("Accounts")),
        ("usage pane", close_pane("Usage")),
        ("llama.cpp pane", close_pane("llama.cpp")),
        ("Ollama pane", close_pane("Ollama")),
        ("GGUF files", app.panes.gguf_view.aclose),
        ("Discover pane", close_pane("Discover")),
        ("first-run offer", lambda: close_first_run_offer(app)),  # before the services it uses
        ("settings dialogs", app.settings_menu.aclose if app.settings_menu else lambda: asyncio.sleep(0)),
        ("local servers", app.local.aclose),  # stops the llama-server started here; pulls paused
        ("engine installs", app.engines.aclose),  # a download stopped here resumes next time
        ("Hugging Face downloads", app.hub_downloads.aclose),  # kept .incomplete: resumed next time
        ("health checks", app.health.aclose),
        ("background tasks", app.tasks.aclose),
        ("model lists", app.catalog.aclose),  # the last lists fetched, on disk
        ("last conversation", lambda: remember_last_conversation(app)),
        ("conversation store", app.store.close),
        ("usage store", app.usage.close),
        ("telemetry export", lambda: app.telemetry.aclose(1.5)),  # the spans queued, within a share of the limit
        ("keyring", app.secrets.close),
        ("HTTP client", app.http.aclose),
        # Still importing LiteLLM is no work of the user's: its daemon thread is left after 1 s.
        ("LiteLLM engine", lambda: asyncio.to_thread(app.engine.stop, 1.0)),
    ]


async def close_first_run_offer(app: ModelDeskApp) -> None:
    offer = getattr(app.first_run_dialog, "local_offer", None)  # the welcome's, when it made one
    if offer is not None:
        await offer.aclose()


async def remember_last_conversation(app: ModelDeskApp) -> None:
    current = app.panes.chat.current_conversation
    if current is not None and app.settings.current.last_conversation_id != current.id:
        await app.settings.update(last_conversation_id=current.id)
