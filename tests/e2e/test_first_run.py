"""The first five minutes on a machine with nothing installed, in the real `python -m desktop_app`
used from outside with real X input (see `desktop.py`): a fresh HOME, no model server, no key, no
llama-server on PATH. The welcome's first offer is "Chat with a local model now"; Return takes
it: llama.cpp comes from the loopback twin of GitHub's release API (an archive of the test
llama-server), the starter model from the loopback Hugging Face Hub twin (the real Gemma 3 270M
GGUF), and the reply to the first message streams from that real llama-server."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.exceptions import TimeoutError as WaitTimeout

from desktop_app.domain.starter import STARTER_MODELS
from desktop_app.services.local.llamacpp_install import RELEASES_ENV
from desktop_app.services.paths import AppPaths
from tests.e2e.desktop import AppProcess, xdotool
from tests.servers.hf_hub import HfHubTwin, _sha256
from tests.servers.llamacpp_releases import LlamaCppReleasesTwin
from tests.unit.engine_archives import TAG
from tests.unit.hub_models import real_gguf

pytest_plugins = ("tests.unit.engine_twin",)  # `archives`: the test llama-server packed as a release asset

FLOW_S = 300.0  # install, download 253 MB, start llama-server, on a busy two-core machine
PROMPT = "Say hello in one short sentence."


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch, archives) -> Iterator[tuple[Path, LlamaCppReleasesTwin, HfHubTwin]]:
    """A fresh HOME, nothing running, no keys; the release and Hub twins the app is pointed at."""
    gguf = real_gguf()
    if gguf is None:
        pytest.skip("the Gemma GGUF is not provisioned (run `make servers`)")
    home = tmp_path / "home"
    home.mkdir()
    for name in [n for n in os.environ if n.endswith("_API_KEY") or n.startswith(("HF_", "XDG_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no llama-server on it
    port = _closed_port()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("LLAMA_ARG_PORT", str(port))
    releases = LlamaCppReleasesTwin()
    release = releases.release(TAG)
    releases.add(release, f"llama-{TAG}-bin-ubuntu-x64.tar.gz", archives["real"])
    releases.add(release, f"llama-{TAG}-bin-ubuntu-vulkan-x64.tar.gz", archives["real"])
    hub = HfHubTwin()
    digest = _sha256(gguf)
    for model in STARTER_MODELS:  # whichever this machine is offered, the test GGUF is what comes
        hub.repo(model.repo).add(model.file, gguf, digest)
    releases.start()
    hub.start()
    monkeypatch.setenv(RELEASES_ENV, releases.api_url)
    monkeypatch.setenv("HF_ENDPOINT", hub.base_url)
    try:
        yield home, releases, hub
    finally:
        hub.stop()
        releases.stop()


def _log(paths: AppPaths) -> str:
    log = paths.log_dir / "modeldesk.log"
    return log.read_text("utf-8") if log.is_file() else ""


def _query(paths: AppPaths, sql: str, *args) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(paths.database_file)) as conn:
        return conn.execute(sql, args).fetchall()


def _window_named(pattern: str) -> str:
    """The X id of a mapped window whose name matches `pattern` ("" while there is none)."""
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", pattern], capture_output=True, text=True, check=False
    )
    return found.stdout.split()[-1] if found.returncode == 0 and found.stdout.split() else ""


def _wait(qtbot, app: AppProcess, paths: AppPaths, what: str, condition, timeout_s: float = 60.0) -> None:
    try:
        qtbot.waitUntil(lambda: bool(condition()) or app.process.poll() is not None, timeout=int(timeout_s * 1000))
    except (TimeoutError, WaitTimeout):
        pytest.fail(f"no {what} after {timeout_s:.0f} s; stderr:\n{app.stderr()[-2000:]}\nlog:\n{_log(paths)[-3000:]}")
    assert app.process.poll() is None, f"the app exited waiting for {what}: {app.stderr()[-3000:]}"


def test_from_nothing_to_a_streamed_local_reply(qtbot, qloop, fresh_machine):
    home, releases, hub = fresh_machine
    paths = AppPaths.under(home / "modeldesk")
    app = AppProcess(home / "modeldesk")
    try:
        app.find_window()
        _wait(qtbot, app, paths, "start-up", lambda: "start-up finished" in _log(paths))

        # The welcome, its first offer the default button: Return takes it. (xdotool's own
        # `search --sync --pid` may answer with the main window before the dialog is mapped.)
        _wait(qtbot, app, paths, "welcome", lambda: _window_named("^Welcome to ModelDesk$"), 120)
        welcome = _window_named("^Welcome to ModelDesk$")
        assert releases.requests == [] and hub.requests == []  # nothing fetched before the user asks
        xdotool("windowfocus", "--sync", welcome)
        app.key("Return")
        _wait(qtbot, app, paths, "local model ready", lambda: "is ready in the chat" in _log(paths), FLOW_S)
        _wait(qtbot, app, paths, "the welcome closed", lambda: welcome not in app.visible_windows())
        model = _log(paths).split("first run: ", 2)[-1].split(" is ready", 1)[0]
        assert (home / "modeldesk" / "data" / "llama.cpp" / TAG / "engine.json").is_file()
        assert list((home / ".cache" / "huggingface" / "hub").glob("models--*/snapshots/*/*.gguf"))

        # The first message: a new chat takes the picked model; the reply streams from llama-server.
        app.focus()
        app.key("ctrl+n")
        _wait(qtbot, app, paths, "new chat", lambda: _query(paths, "SELECT count(*) FROM conversations")[0][0] > 0)
        [(conversation, picked)] = _query(paths, "SELECT id, model FROM conversations ORDER BY id DESC LIMIT 1")
        assert picked == model
        app.click("composer")
        app.type(PROMPT)
        app.key("ctrl+Return")

        def reply() -> tuple[str, str]:
            rows = _query(
                paths,
                "SELECT status, content FROM messages WHERE conversation_id = ? AND role = 'assistant'",
                conversation,
            )
            return rows[0] if rows else ("", "")

        # The test GGUF has no chat template of its own, so its reply may run to the context's end:
        # once it streams, Escape stops it, as a user would.
        _wait(qtbot, app, paths, "streamed reply", lambda: len(reply()[1].strip()) > 20, 120)
        app.key("Escape")
        _wait(qtbot, app, paths, "stopped reply", lambda: reply()[0] in ("stopped", "complete"))
        app.key("ctrl+q")
        assert app.wait(60) == 0, app.stderr()[-3000:]
    finally:
        app.close()
