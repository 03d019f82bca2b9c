"""`modeldesk --self-test`: prove an install (or a frozen bundle) has everything it needs to run.

It builds the real app in a throw-away MODELDESK_HOME with an offscreen window and a keyring that
keeps nothing, shows the main window, opens the conversation and usage stores, imports LiteLLM
through the engine and checks its bundled price map and tokenizer files, all without a network or
the user's files. One line per check; exit status 0 when all pass, 1 with the failing sentence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from desktop_app import __version__

STEP_TIMEOUT_S = 60.0
LITELLM_TIMEOUT_S = 180.0
# Said by the offscreen platform for every shown top-level window; not a problem of ours.
_IGNORED_QT_MESSAGES = ("This plugin does not support propagateSizeHints",)


class CheckFailed(Exception):
    """A check's one-sentence reason."""


class _Report:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.failures: list[str] = []

    def line(self, status: str, name: str, text: str) -> None:
        print(f"{status:<5} {name}: {text}", file=self._out, flush=True)

    async def check(self, name: str, step: Callable[[], Awaitable[str]], *, timeout: float = STEP_TIMEOUT_S) -> bool:
        try:
            detail = await asyncio.wait_for(step(), timeout)
        except CheckFailed as exc:
            return self._fail(name, str(exc))
        except TimeoutError:
            return self._fail(name, f"no result within {timeout:g} s.")
        except Exception as exc:  # noqa: BLE001 (any surprise is this check's failure, in one line)
            return self._fail(name, f"{type(exc).__name__}: {exc}".strip())
        self.line("ok", name, detail)
        return True

    def _fail(self, name: str, sentence: str) -> bool:
        self.failures.append(f"{name}: {sentence}")
        self.line("FAIL", name, sentence)
        return False


def run_self_test(out: TextIO | None = None) -> int:
    """Run every check; 0 if all passed, else 1 (the first failure is repeated on the last line)."""
    out = out or sys.stdout
    # Before Qt and LiteLLM are loaded: no display needed, no price list downloaded.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    previous_home = os.environ.get("MODELDESK_HOME")
    report = _Report(out)
    print(f"ModelDesk {__version__} self-test", file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="modeldesk-selftest-") as home:
        os.environ["MODELDESK_HOME"] = home
        try:
            _run_in_qt(report)
        finally:
            if previous_home is None:
                os.environ.pop("MODELDESK_HOME", None)
            else:
                os.environ["MODELDESK_HOME"] = previous_home
    if report.failures:
        print(f"Self-test failed: {report.failures[0]}", file=out, flush=True)
        return 1
    print("Self-test passed.", file=out, flush=True)
    return 0


def _run_in_qt(report: _Report) -> None:
    import qasync
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    qt_messages: list[str] = []

    def on_qt_message(kind, _context, message: str) -> None:
        if (
            kind != QtMsgType.QtDebugMsg
            and kind != QtMsgType.QtInfoMsg
            and not message.startswith(_IGNORED_QT_MESSAGES)
        ):
            qt_messages.append(message)

    previous_handler = qInstallMessageHandler(on_qt_message)
    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop_app.services.litellm_engine import drop_pyside_import_hook

    drop_pyside_import_hook()  # as the app does at start-up, before its own imports
    qt_app.setApplicationName("ModelDesk")
    qt_app.setApplicationVersion(__version__)
    # The window is closed before the last checks; that must not end the loop they run on.
    qt_app.setQuitOnLastWindowClosed(False)
    from desktop_app.ui.common.gc import MainThreadCollector

    collector = MainThreadCollector()
    collector.start()
    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)
    log_handler = _log_to(Path(os.environ["MODELDESK_HOME"]) / "selftest.log")
    try:
        with loop:
            loop.run_until_complete(_checks(report, qt_messages, collector))
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()
        collector.stop()
        qInstallMessageHandler(previous_handler)
        asyncio.set_event_loop(None)


async def _checks(report: _Report, qt_messages: list[str], collector) -> None:
    import keyring.backends.null
    from PySide6.QtCore import QLibraryInfo, qVersion
    from PySide6.QtGui import QGuiApplication, QIcon

    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.litellm_engine import estimate_tokens
    from desktop_app.services.paths import AppPaths
    from desktop_app.ui.theme import app_icon, resources_dir

    async def qt_platform() -> str:
        name = QGuiApplication.platformName()
        if name != "offscreen":
            raise CheckFailed(f"the platform is {name!r}, not offscreen.")
        plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
        if sys.platform.startswith("linux") and not any(plugins.glob("libqxcb*")):
            raise CheckFailed(f"the X11 platform plugin (libqxcb) is missing from {plugins}.")
        return f"Qt {qVersion()}, offscreen platform, X11 plugin present"

    async def icon() -> str:
        root = resources_dir()
        if root is None:
            raise CheckFailed("the resources folder (icons) is missing.")
        if app_icon().pixmap(64, 64).isNull():
            raise CheckFailed("the application icon could not be drawn.")
        svg = next(
            (p for p in (root / "modeldesk.svg", root / "icons/hicolor/scalable/apps/modeldesk.svg") if p.is_file()),
            root / "modeldesk.svg",
        )
        if QIcon(str(svg)).pixmap(64, 64).isNull():
            raise CheckFailed("the SVG icon could not be drawn (Qt's SVG plugins are missing).")
        return f"drawn from {root}"

    await report.check("Qt", qt_platform)
    await report.check("icon", icon)

    from desktop_app.app import ModelDeskApp

    paths = AppPaths.from_environment()
    holder: dict[str, ModelDeskApp] = {}

    async def main_window() -> str:
        app = ModelDeskApp(
            paths=paths,
            secrets=SecretStore(backend=keyring.backends.null.Keyring()),
            offer_env_import=False,
            collector=collector,
        )
        holder["app"] = app
        painted = asyncio.Event()
        app.window.first_painted.connect(painted.set)
        app.window.show()
        await painted.wait()
        return f"shown and painted ({app.window.width()}x{app.window.height()}, home {paths.config_dir.parent})"

    if not await report.check("main window", main_window):
        return
    app = holder["app"]
    try:

        async def stores() -> str:
            await app.start()  # opens the conversation and usage stores, starts LiteLLM's import
            conversations = await app.store.list_conversations()
            records = await app.usage.records(limit=1)
            for path in (paths.database_file, paths.data_dir / "usage.sqlite3"):
                if not path.is_file():
                    raise CheckFailed(f"{path.name} was not created.")
            return f"conversations ({len(conversations)}) and usage ({len(records)}) opened under {paths.data_dir}"

        await report.check("stores", stores)

        litellm_holder: dict[str, object] = {}

        async def litellm_import() -> str:
            started = time.perf_counter()
            module = await app.engine.litellm()
            litellm_holder["module"] = module
            version = getattr(module, "version", None) or _dist_version("litellm")
            return f"LiteLLM {version} imported on its engine thread in {time.perf_counter() - started:.1f} s"

        if await report.check("LiteLLM", litellm_import, timeout=LITELLM_TIMEOUT_S):
            litellm = litellm_holder["module"]

            async def price_map() -> str:
                cost = getattr(litellm, "model_cost", None) or {}
                if len(cost) < 100:
                    raise CheckFailed(f"LiteLLM's bundled price map has {len(cost)} models (expected hundreds).")
                return f"{len(cost):,} models in the bundled price map"

            async def tokenizer() -> str:
                # tiktoken reads its encodings from LiteLLM's bundled copies; nothing is downloaded.
                counts = {
                    model: estimate_tokens(litellm, model, text="Hello from ModelDesk")
                    for model in ("gpt-3.5-turbo", "gpt-4o")
                }
                if not all(isinstance(n, int) and n > 0 for n in counts.values()):
                    raise CheckFailed(f"token counting failed ({counts}).")
                return ", ".join(f"{model}: {n} tokens" for model, n in counts.items())

            async def chat() -> str:
                return await _loopback_chat(app)

            await report.check("price map", price_map)
            await report.check("tokenizer", tokenizer)
            await report.check("chat", chat)

        async def keyring_backend() -> str:
            backend = await asyncio.to_thread(keyring.get_keyring)
            return f"{type(backend).__module__}.{type(backend).__qualname__} (not used by the self-test)"

        await report.check("keyring", keyring_backend)
    finally:

        async def shut_down() -> str:
            abandoned = await app.aclose()
            app.window.close()
            app.window.deleteLater()
            if abandoned:
                raise CheckFailed(f"quitting gave up waiting for {abandoned[0]}.")
            return "closed the stores, the HTTP client and the LiteLLM engine"

        await report.check("shutdown", shut_down)

    async def no_qt_warnings() -> str:
        if qt_messages:
            raise CheckFailed(f"Qt warned {len(qt_messages)} time(s), first: {qt_messages[0]}")
        return "none"

    await report.check("Qt warnings", no_qt_warnings)


SELF_TEST_REPLY = ("Self", "-test ", "reply")


class _LoopbackChatServer:
    """The smallest OpenAI-format server: one streamed reply, on 127.0.0.1 only."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        chunks = [
            {
                "id": "selftest",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "selftest",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
            for text in SELF_TEST_REPLY
        ]
        chunks.append(
            {
                "id": "selftest",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "selftest",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
            }
        )
        body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="selftest-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


async def _loopback_chat(app) -> str:
    """A streamed reply through the app's LLM service, LiteLLM and the OpenAI client."""
    from desktop_app.domain.accounts import Account
    from desktop_app.domain.chat import ChatMessage, ChatParams, Failed, TextDelta

    server = await asyncio.to_thread(_LoopbackChatServer)
    try:
        account = Account(provider_id="openai_compatible", label="Self-test", base_url=server.base_url)
        text = []
        async for event in app.llm.stream_chat(
            account=account,
            api_key="self-test",
            model="selftest",
            messages=[ChatMessage("user", "ping")],
            params=ChatParams(),
            timeout_s=20.0,
        ):
            if isinstance(event, Failed):
                raise CheckFailed(f"{event.error.message} {event.error.action}".strip())
            if isinstance(event, TextDelta):
                text.append(event.text)
    finally:
        await asyncio.to_thread(server.close)
    if "".join(text) != "".join(SELF_TEST_REPLY):
        raise CheckFailed(f"the streamed reply was {''.join(text)!r}, not {''.join(SELF_TEST_REPLY)!r}.")
    return f"streamed {len(SELF_TEST_REPLY)} chunks from a loopback OpenAI-format server"


def _log_to(path: Path) -> logging.Handler:
    # Into the throw-away home, like the app's own log: the report lines stay the only output.
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(version unknown)"
