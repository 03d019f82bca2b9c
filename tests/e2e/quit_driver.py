"""Runs `python -m desktop_app` (its `main()`, unchanged) and plays the user on its own loop.

    python -m tests.e2e.quit_driver idle|chat|busy ctrl-q|close|app-quit|stay [PULL [CHAT]]

`idle`: wait for the start-up to finish. `chat`: refresh the models, start a new chat, send a
message to the model CHAT (default gemma) and wait for the reply to stream. `busy`: that, then
pull PULL in the Ollama pane (OLLAMA_HOST) and wait for its first bytes. Then print one JSON line
of what the window shows and quit through the window: Ctrl+Q, or closing it (or
QApplication.quit(), as the session ending does), or `stay` until killed. The process exits with
the app's own status.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

T = TypeVar("T")
_drive: asyncio.Task[None] | None = None


async def until(what: str, probe: Callable[[], T], timeout: float = 60.0) -> T:
    """What `probe` returns once it is truthy; checked every 20 ms, TimeoutError after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := probe()):
        if loop.time() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f} s")
        await asyncio.sleep(0.02)
    return value


def _find(kind: type[Any]) -> Any:
    from desktop_app.ui.main_window import MainWindow

    window = next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)
    if window is None:
        return None
    return window if kind is MainWindow else window.findChild(kind)


async def drive(scenario: str, how: str, pull_model: str, chat_model: str) -> None:
    from desktop_app.ui.chat.pane import ChatPane
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.ollama.pane import OllamaPane

    window = await until("main window", lambda: _find(MainWindow))
    chat = await until("chat pane", lambda: _find(ChatPane))
    # The seeded conversation is open: the slow part of the start-up is done.
    await until("open conversation", lambda: chat.current_conversation is not None)
    state: dict[str, Any] = {}
    if scenario in ("chat", "busy"):
        refreshed = _next_emit(chat.models_refreshed)
        QTest.mouseClick(chat.refresh_button, Qt.MouseButton.LeftButton)
        await asyncio.wait_for(refreshed, 60)
        picker = chat.picker_model
        row = next(r for r in range(picker.rowCount()) if picker.entry_at(r).model == chat_model)
        chat.model_picker.setCurrentIndex(row)
        QTest.mouseClick(chat.new_button, Qt.MouseButton.LeftButton)
        seeded = chat.current_conversation.id
        await until("new chat", lambda: chat.current_conversation.id != seeded)
        QTest.keyClicks(chat.composer, "Count from one to one thousand.")
        QTest.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        await until("streamed text", lambda: len(chat.transcript.plain_text_of_last_message()) > 40)
        state = {"conversation": chat.current_conversation.id, "streaming": chat.streaming,
                 "shown": chat.transcript.plain_text_of_last_message()}
    if scenario == "busy":
        window.show_pane("Ollama")
        ollama = await until("Ollama pane", lambda: _find(OllamaPane))
        await until("reachable Ollama", lambda: ollama.pull_edit.isEnabled(), timeout=30)
        QTest.keyClicks(ollama.pull_edit, pull_model)
        QTest.keyClick(ollama.pull_edit, Qt.Key.Key_Return)
        job = await until("pull job", lambda: ollama.service.pull_job(pull_model))
        await until("pulled bytes", lambda: job.completed > 0)
        state.update(streaming=chat.streaming, shown=chat.transcript.plain_text_of_last_message(),
                     pull_completed=job.completed)
    print(json.dumps(state), flush=True)
    if how == "ctrl-q":
        window.activateWindow()  # a window shortcut needs its window active, as under the user's hands
        await until("active window", window.isActiveWindow, timeout=10)
        QTest.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    elif how == "close":
        window.close()
    elif how == "app-quit":  # as when the desktop session ends, Qt's loop is told to quit
        QApplication.instance().quit()
    # "stay": the app goes on (the reply keeps streaming) until the test kills it.


def _next_emit(signal) -> asyncio.Future[None]:
    future = asyncio.get_running_loop().create_future()
    signal.connect(lambda *_args: future.done() or future.set_result(None))
    return future


def _start(scenario: str, how: str, pull_model: str, chat_model: str) -> None:
    global _drive
    _drive = asyncio.ensure_future(drive(scenario, how, pull_model, chat_model))
    _drive.add_done_callback(lambda t: t.cancelled() or t.exception() is None or _fail(t.exception()))


def _fail(exc: BaseException) -> None:
    from desktop_app.ui.chat.pane import ChatPane

    chat = _find(ChatPane)
    shown = chat.transcript.toPlainText()[-500:] if chat is not None else ""
    print(f"driver failed: {exc!r}; the chat shows: {shown!r}", file=sys.stderr, flush=True)
    QApplication.instance().exit(3)


def main() -> int:
    scenario, how = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    pull_model = rest[0] if rest else ""
    chat_model = rest[1] if len(rest) > 1 else "gemma"
    QApplication(sys.argv[:1])  # made here so the first timer can be queued; main() uses it
    QTimer.singleShot(0, lambda: _start(scenario, how, pull_model, chat_model))
    from desktop_app.__main__ import main as app_main

    return app_main([])


if __name__ == "__main__":
    raise SystemExit(main())
