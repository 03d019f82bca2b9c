"""Quitting the real `python -m desktop_app` process through its window, used from outside with
real X input (see `desktop.py`): exit status 0, and the work in hand recorded (the reply being
written saved as stopped, the pull paused with its bytes, the last conversation remembered). And
killing it mid-reply: the text streamed so far was on disk, and the next start shows the reply
interrupted, with Retry and its usage record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.ollama import format_bytes
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.paths import AppPaths
from desktop_app.services.settings_store import SettingsStore
from tests.e2e.desktop import AppProcess
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import run

PULL_MODEL = "llama3.2:1b"  # 1.3 GB at 16 MB/s from the loopback Ollama: far from done at quit
PROMPT = "Count from one to one thousand."


def _seed(paths: AppPaths, accounts: list[Account], runner=asyncio.run) -> int:
    """Settings with `accounts` (first run already over) and one conversation; returns its id.
    `runner` runs a coroutine to its end (the qasync loop's when a test has one)."""
    SettingsStore(paths.settings_file).save(Settings(accounts=accounts, env_import_offered=True))

    async def seed() -> int:
        store = ConversationStore(paths.database_file)
        await store.open()
        try:
            account_id = accounts[0].id if accounts else ""
            conversation = await store.create_conversation(
                title="Seeded", account_id=account_id, model="gemma" if accounts else "", params=ChatParams()
            )
            return conversation.id
        finally:
            await store.close()

    return runner(seed())


def _seed_llama_server(qtbot, llama_server) -> tuple[AppPaths, Account]:
    """This test's paths, seeded (on the qasync loop) with an account for `llama_server`."""
    paths = AppPaths.from_environment().ensure()
    account = Account(provider_id="llamacpp", label="Local gemma", base_url=f"{llama_server.base_url}/v1")
    _seed(paths, [account], lambda coro: run(qtbot, coro))
    return paths, account


def _query(paths: AppPaths, sql: str, *args) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(paths.database_file)) as conn:
        return conn.execute(sql, args).fetchall()


def _log(paths: AppPaths) -> str:
    log = paths.log_dir / "modeldesk.log"
    return log.read_text("utf-8") if log.is_file() else ""


@contextlib.contextmanager
def _app(qtbot, paths: AppPaths, *, ollama_url: str = ""):
    """The app started as the user starts it, its window focused, its start-up finished."""
    app = AppProcess(Path(os.environ["MODELDESK_HOME"]), ollama_url=ollama_url)
    try:
        app.find_window()
        app.focus()
        _wait(
            qtbot,
            app,
            "finished start-up",
            lambda: "start-up finished" in _log(paths) or app.process.poll() is not None,
        )
        assert app.process.poll() is None, app.stderr()[-3000:]
        yield app
    finally:
        app.close()


@contextlib.contextmanager
def _restarted(qtbot, paths: AppPaths, conversation: int):
    """The app started again, in this process, once its chat shows `conversation`; closed after."""
    app = ModelDeskApp(paths=paths, offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    try:
        chat = app.chat_pane
        qtbot.waitUntil(
            lambda: chat.current_conversation is not None and chat.current_conversation.id == conversation,
            timeout=10_000,
        )
        yield app
    finally:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()


def _wait(qtbot, app: AppProcess, what: str, condition, timeout_s: float = 60.0) -> None:
    """Wait for `condition`; on time-out, fail with what the app wrote to stderr and its log."""
    try:
        qtbot.waitUntil(condition, timeout=int(timeout_s * 1000))
    except TimeoutError:
        home = Path(os.environ["MODELDESK_HOME"])
        log = home / "log" / "modeldesk.log"
        pytest.fail(
            f"no {what} after {timeout_s:.0f} s; app stderr:\n{app.stderr()[-2000:]}\nlog:\n"
            f"{log.read_text('utf-8')[-2000:] if log.is_file() else ''}"
        )


def _quit(qtbot, app: AppProcess, paths: AppPaths, how: str) -> None:
    """Quit through the window as `how` says; the app exits 0, quietly, having abandoned nothing."""
    if how == "ctrl-q":
        app.key("ctrl+q")
    elif how == "file-menu":
        before = app.visible_windows()
        app.key("alt+f")
        _wait(qtbot, app, "open File menu", lambda: len(app.visible_windows()) > len(before))
        app.key("q")
    elif how == "close-button":
        app.close_window()
    status = app.wait(120)
    stderr = app.stderr()
    assert "Event loop stopped before Future completed" not in stderr
    assert status == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    log = _log(paths)
    assert "quitting: " not in log, log[-2000:]  # nothing abandoned, no step failed


def _send(qtbot, app: AppProcess, paths: AppPaths) -> int:
    """List the models, start a new chat, send PROMPT and wait for the reply to stream and be saved
    as it goes; returns the new conversation's id."""
    app.click("refresh models")
    models = paths.model_cache_file
    _wait(qtbot, app, "model list", lambda: models.is_file() and "gemma" in models.read_text("utf-8"))
    [(seeded,)] = _query(paths, "SELECT max(id) FROM conversations")
    app.key("ctrl+n")
    _wait(qtbot, app, "new chat", lambda: _query(paths, "SELECT max(id) FROM conversations")[0][0] != seeded)
    [(conversation, model)] = _query(paths, "SELECT id, model FROM conversations ORDER BY id DESC LIMIT 1")
    assert model == "gemma"  # the new chat took the model the refresh listed
    app.click("composer")
    app.type(PROMPT)
    app.key("ctrl+Return")
    _wait(qtbot, app, "streamed reply", lambda: len(_reply(paths, conversation)[1].strip()) > 40)
    return conversation


def _reply(paths: AppPaths, conversation: int) -> tuple[str, str]:
    """(status, content) of the conversation's assistant message as saved so far."""
    rows = _query(
        paths, "SELECT status, content FROM messages WHERE conversation_id = ? AND role = 'assistant'", conversation
    )
    return rows[0] if rows else ("", "")


@pytest.mark.parametrize("how", ["close-button", "file-menu", "ctrl-q"])
def test_quitting_the_idle_window_exits_0_and_remembers_the_conversation(qtbot, how):
    paths = AppPaths.from_environment().ensure()
    seeded = _seed(paths, [])

    with _app(qtbot, paths) as app:
        _quit(qtbot, app, paths, how)

    settings, notice = SettingsStore(paths.settings_file).load()
    assert notice is None and settings.last_conversation_id == seeded


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        yield server


def _pulled_bytes(ollama: OllamaServer) -> int:
    return sum(ollama.blob_bytes(layer.digest) for layer in ollama.layers_of(PULL_MODEL))


def test_ctrl_q_mid_reply_and_mid_pull_saves_the_reply_and_pauses_the_pull(
    qtbot, qloop, monkeypatch, llama_server, ollama
):
    paths, account = _seed_llama_server(qtbot, llama_server)

    with _app(qtbot, paths, ollama_url=ollama.base_url) as app:
        # A first look at the Ollama pane: it asks the host what it has, and enables "Pull a model"
        # once it has the answers (the chat below gives it the time to take them in).
        app.key("ctrl+4")
        _wait(
            qtbot,
            app,
            "the Ollama pane's first questions",
            lambda: {"/api/tags", "/api/ps"} <= {r.path for r in ollama.requests},
        )
        app.key("ctrl+1")
        conversation = _send(qtbot, app, paths)
        app.key("ctrl+4")
        app.click("pull name")
        app.type(PULL_MODEL)
        app.key("Return")
        _wait(qtbot, app, "pulled bytes", lambda: _pulled_bytes(ollama) > 0)
        status, early = _reply(paths, conversation)
        assert status == MessageStatus.STREAMING  # still being written when the user quits
        _quit(qtbot, app, paths, "ctrl-q")

    # The reply being written: saved with its text, stopped (not left `streaming`), usage recorded.
    settings, _notice = SettingsStore(paths.settings_file).load()
    assert settings.last_conversation_id == conversation

    async def records():
        store, usage = ConversationStore(paths.database_file), UsageStore(paths.data_dir / "usage.sqlite3")
        await store.open()
        await usage.open()
        try:
            return await store.messages(conversation), await usage.records()
        finally:
            await store.close()
            await usage.close()

    messages, usage = run(qtbot, records())
    assert [(m.role, m.status) for m in messages] == [
        ("user", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.STOPPED),
    ]
    assert messages[0].content == PROMPT
    assert messages[1].content.startswith(early) and len(messages[1].content) >= len(early)
    assert [(r.account_id, r.status) for r in usage] == [(account.id, "stopped")]
    qtbot.waitUntil(lambda: not llama_server.busy(), timeout=5_000)  # the stream was closed, not left

    # The pull: paused with the bytes it had, which the loopback Ollama kept on its disk.
    ledger = json.loads((paths.data_dir / "ollama-pulls.json").read_text("utf-8"))
    [entry] = ledger["pulls"].values()
    assert (entry["model"], entry["state"]) == (PULL_MODEL, "cancelled")
    assert 0 < entry["completed"] <= _pulled_bytes(ollama) < entry["total"]

    # Started again, the app shows both as they were left.
    monkeypatch.setenv("OLLAMA_HOST", ollama.base_url)
    with _restarted(qtbot, paths, conversation) as restarted:
        chat = restarted.chat_pane
        qtbot.waitUntil(lambda: "Stopped" in chat.transcript.toPlainText(), timeout=10_000)
        restarted.window.show_pane("Ollama")
        jobs = restarted.ollama_pane.jobs_model
        qtbot.waitUntil(lambda: jobs.progress_of(PULL_MODEL) is not None, timeout=10_000)
        detail = jobs.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
        assert detail.startswith(f"{format_bytes(entry['completed'])} of {format_bytes(entry['total'])} kept on disk")


def test_killed_mid_reply_the_reply_comes_back_interrupted_with_its_text_and_retry(qtbot, qloop, llama_server):
    paths, account = _seed_llama_server(qtbot, llama_server)

    with _app(qtbot, paths) as app:
        conversation = _send(qtbot, app, paths)
        _status, early = _reply(paths, conversation)
        # The reply goes on reaching the disk as it streams; then the app dies at once.
        _wait(qtbot, app, "further saved text", lambda: len(_reply(paths, conversation)[1]) > len(early))
        app.kill()  # SIGKILL: no quit, no finally, nothing saved after this
    status, cut = _reply(paths, conversation)
    assert status == MessageStatus.STREAMING and cut.startswith(early)

    with _restarted(qtbot, paths, conversation) as restarted:
        chat = restarted.chat_pane
        qtbot.waitUntil(lambda: "This reply was cut off.  Retry" in chat.transcript.toPlainText(), timeout=10_000)
        assert "Interrupted: ModelDesk closed while this reply was arriving" in chat.transcript.toPlainText()
        messages = run(qtbot, restarted.store.messages(conversation))
        assert [(m.role, m.status) for m in messages] == [
            ("user", MessageStatus.COMPLETE),
            ("assistant", MessageStatus.INTERRUPTED),
        ]
        assert messages[1].content == cut
        assert [(r.account_id, r.model, r.status) for r in run(qtbot, restarted.usage.records())] == [
            (account.id, "gemma", "interrupted")
        ]

        chat.params.max_tokens.setValue(16)  # the server runs to the context limit otherwise
        with qtbot.waitSignal(chat.reply_finished, timeout=60_000) as finished:
            chat.transcript.anchorClicked.emit(QUrl("retry:"))
        assert finished.args == ["complete"]
        messages = run(qtbot, restarted.store.messages(conversation))
        assert [(m.role, m.status) for m in messages] == [
            ("user", MessageStatus.COMPLETE),
            ("assistant", MessageStatus.COMPLETE),
        ]
