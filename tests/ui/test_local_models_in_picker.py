"""A llama-server's models reach the chat's picker through "Use in chat": every model of a router,
loaded or not; choosing an unloaded router model loads it (the chat shows a loading line) and the
chat proceeds. (Installed Ollama models reach the picker by themselves: tests/ui/test_ollama_hosts.py.)"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt

from desktop_app.app import ModelDeskApp
from desktop_app.services.paths import AppPaths
from tests.servers.llama import LlamaServer
from tests.ui.conftest import run


def _app(qtbot) -> ModelDeskApp:
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    return app


def _close(qtbot, app) -> None:
    run(qtbot, app.aclose())
    app.window.close()
    app.window.deleteLater()


def test_a_router_model_not_loaded_is_pickable_and_loads_when_chosen(qtbot, qloop, tmp_path):
    probe = LlamaServer()  # finds the real binary and model, or skips/fails like the e2e tests
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(probe.model, models / "gemma-a.gguf")
    os.symlink(probe.model, models / "gemma-b.gguf")
    presets = tmp_path / "presets.ini"
    presets.write_text("[*]\njinja = false\nchat-template = gemma\n")
    router = LlamaServer(extra_args=("--models-dir", str(models), "--models-preset", str(presets),
                                     "--models-max", "1"), alias="router")
    router._args = [a for a in router._args if a not in ("-m", str(probe.model), "--alias", "router",
                                                          "--no-jinja", "--chat-template", "gemma")]
    router.start()
    app = _app(qtbot)
    try:
        app.window.show_pane("llama.cpp")
        run(qtbot, app.llamacpp_pane.connect(router.base_url))
        app.llamacpp_pane.servers_view.selectRow(0)
        qtbot.waitUntil(app.llamacpp_pane.use_in_chat_button.isEnabled, timeout=5_000)
        app.llamacpp_pane.use_in_chat_button.click()
        qtbot.waitUntil(lambda: app.window.stack.currentWidget() is app.chat_pane, timeout=20_000)
        account = next(a for a in app.accounts.accounts if a.provider_id == "llamacpp")
        assert app.chat_pane.select_model(account.id, "gemma-a") and app.chat_pane.select_model(account.id, "gemma-b")
        chat = app.chat_pane
        chat.params.max_tokens.setValue(8)
        qtbot.keyClicks(chat.composer, "Hello")
        with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as finished:
            qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert finished.args == ["complete"], chat.transcript.toPlainText()[-400:]
        assert "8 out tokens" in chat.transcript.toPlainText()
    finally:
        _close(qtbot, app)
        router.stop()
