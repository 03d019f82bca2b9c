"""Quitting the real `python -m desktop_app` process through its window: exit status 0, and the
work in hand recorded (the reply being written saved as stopped, the pull paused with its bytes,
the last conversation remembered). And killing it mid-reply: the text on screen was on disk, and
the next start shows the reply interrupted, with Retry and its usage record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.ollama import format_bytes
from desktop_app.domain.settings import Settings
from desktop_app.services.conversations import ConversationStore
from desktop_app.services.paths import AppPaths
from desktop_app.services.settings_store import SettingsStore
from desktop_app.services.usage import UsageStore
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import run

REPO_ROOT = Path(__file__).resolve().parents[2]
PULL_MODEL = "llama3.2:1b"  # 1.3 GB at 16 MB/s from the loopback Ollama: far from done at quit


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
                title="Seeded", account_id=account_id, model="gemma" if accounts else "", params=ChatParams())
            return conversation.id
        finally:
            await store.close()
    return runner(seed())


def _run_app(paths: AppPaths, scenario: str, how: str, *, ollama_url: str = "") -> tuple[dict, str]:
    """Start the app in a process of its own, let the driver act and quit; (what it showed, stderr)."""
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env["MODELDESK_HOME"] = os.environ["MODELDESK_HOME"]
    if ollama_url:
        env["OLLAMA_HOST"] = ollama_url
    args = [sys.executable, "-m", "tests.e2e.quit_driver", scenario, how, PULL_MODEL]
    result = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
                            check=False)
    assert "Event loop stopped before Future completed" not in result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    log = (paths.log_dir / "modeldesk.log").read_text("utf-8")
    assert "quitting: " not in log, log[-2000:]  # nothing abandoned, no step failed
    return shown, result.stderr


@pytest.mark.parametrize("how", ["close", "app-quit"])
def test_closing_the_idle_window_exits_0_and_remembers_the_conversation(how):
    paths = AppPaths.from_environment().ensure()
    seeded = _seed(paths, [])

    _run_app(paths, "idle", how)

    settings, notice = SettingsStore(paths.settings_file).load()
    assert notice is None and settings.last_conversation_id == seeded


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        yield server


def test_ctrl_q_mid_reply_and_mid_pull_saves_the_reply_and_pauses_the_pull(
        qtbot, qloop, monkeypatch, llama_server, ollama):
    paths = AppPaths.from_environment().ensure()
    account = Account(provider_id="llamacpp", label="Local gemma", base_url=f"{llama_server.base_url}/v1")
    _seed(paths, [account], lambda coro: run(qtbot, coro))

    shown, _stderr = _run_app(paths, "busy", "ctrl-q", ollama_url=ollama.base_url)

    assert shown["streaming"] and shown["pull_completed"] > 0
    # The reply being written: saved with its text, stopped (not left `streaming`), usage recorded.
    settings, _notice = SettingsStore(paths.settings_file).load()
    assert settings.last_conversation_id == shown["conversation"]

    async def records():
        store, usage = ConversationStore(paths.database_file), UsageStore(paths.data_dir / "usage.sqlite3")
        await store.open()
        await usage.open()
        try:
            return await store.messages(shown["conversation"]), await usage.records()
        finally:
            await store.close()
            await usage.close()
    messages, usage = run(qtbot, records())
    assert [(m.role, m.status) for m in messages] == [("user", MessageStatus.COMPLETE),
                                                       ("assistant", MessageStatus.STOPPED)]
    assert messages[0].content == "Count from one to one thousand."
    assert messages[1].content.strip() and messages[1].content.startswith(shown["shown"].strip()[:40])
    assert [(r.account_id, r.status) for r in usage] == [(account.id, "stopped")]
    qtbot.waitUntil(lambda: not llama_server.busy(), timeout=5_000)  # the stream was closed, not left

    # The pull: paused with the bytes it had, which the loopback Ollama kept on its disk.
    ledger = json.loads((paths.data_dir / "ollama-pulls.json").read_text("utf-8"))
    [entry] = ledger["pulls"].values()
    assert (entry["model"], entry["state"]) == (PULL_MODEL, "cancelled")
    assert shown["pull_completed"] <= entry["completed"] < entry["total"]
    kept = sum(ollama.blob_bytes(layer.digest) for layer in ollama.layers_of(PULL_MODEL))
    assert entry["completed"] <= kept

    # Started again, the app shows both as they were left.
    monkeypatch.setenv("OLLAMA_HOST", ollama.base_url)
    app = ModelDeskApp(paths=paths, offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    try:
        chat = app.chat_pane
        qtbot.waitUntil(lambda: chat.current_conversation is not None
                        and chat.current_conversation.id == shown["conversation"], timeout=10_000)
        qtbot.waitUntil(lambda: "Stopped" in chat.transcript.toPlainText(), timeout=10_000)
        app.window.show_pane("Ollama")
        jobs = app.ollama_pane.jobs_model
        qtbot.waitUntil(lambda: jobs.progress_of(PULL_MODEL) is not None, timeout=10_000)
        detail = jobs.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
        assert detail.startswith(f"{format_bytes(entry['completed'])} of {format_bytes(entry['total'])} kept on disk")
    finally:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()


def test_killed_mid_reply_the_reply_comes_back_interrupted_with_its_text_and_retry(qtbot, qloop, llama_server):
    paths = AppPaths.from_environment().ensure()
    account = Account(provider_id="llamacpp", label="Local gemma", base_url=f"{llama_server.base_url}/v1")
    _seed(paths, [account], lambda coro: run(qtbot, coro))
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.quit_driver", "chat", "stay"], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        shown = json.loads(process.stdout.readline())
        assert shown["streaming"]

        def saved() -> str:
            with contextlib.closing(sqlite3.connect(paths.database_file)) as conn:
                row = conn.execute("SELECT content FROM messages WHERE conversation_id = ? AND role = 'assistant'",
                                   (shown["conversation"],)).fetchone()
            return row[0] if row else ""

        # What was on screen reaches the disk while the reply goes on; then the app dies at once.
        qtbot.waitUntil(lambda: len(saved().strip()) >= len(shown["shown"].strip()), timeout=5_000)
    finally:
        process.kill()  # SIGKILL: no quit, no finally, nothing saved after this
        process.wait()
        process.stdout.close()
    cut = saved()
    assert shown["shown"].strip()[:20] in cut

    app = ModelDeskApp(paths=paths, offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    try:
        chat = app.chat_pane
        qtbot.waitUntil(lambda: chat.current_conversation is not None
                        and chat.current_conversation.id == shown["conversation"], timeout=10_000)
        qtbot.waitUntil(lambda: "This reply was cut off.  Retry" in chat.transcript.toPlainText(), timeout=10_000)
        assert "Interrupted: ModelDesk closed while this reply was arriving" in chat.transcript.toPlainText()
        messages = run(qtbot, app.store.messages(shown["conversation"]))
        assert [(m.role, m.status) for m in messages] == [("user", MessageStatus.COMPLETE),
                                                           ("assistant", MessageStatus.INTERRUPTED)]
        assert messages[1].content == cut
        assert [(r.account_id, r.model, r.status) for r in run(qtbot, app.usage.records())] == [
            (account.id, "gemma", "interrupted")]

        chat.params.max_tokens.setValue(16)  # the server runs to the context limit otherwise
        with qtbot.waitSignal(chat.reply_finished, timeout=60_000) as finished:
            chat.transcript.anchorClicked.emit(QUrl("retry:"))
        assert finished.args == ["complete"]
        messages = run(qtbot, app.store.messages(shown["conversation"]))
        assert [(m.role, m.status) for m in messages] == [("user", MessageStatus.COMPLETE),
                                                           ("assistant", MessageStatus.COMPLETE)]
    finally:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()
