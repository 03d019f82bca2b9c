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
    router = LlamaServer(
        extra_args=("--models-dir", str(models), "--models-preset", str(presets), "--models-max", "1"), alias="router"
    )
    router._args = [
        a
        for a in router._args
        if a not in ("-m", str(probe.model), "--alias", "router", "--no-jinja", "--chat-template", "gemma")
    ]
    router.start()
    app = _app(qtbot)
    try:
        app.window.show_pane("llama.cpp")
        run(qtbot, app.llamacpp_pane.connect(router.base_url))
        app.llamacpp_pane.servers_box.view.selectRow(0)
        qtbot.waitUntil(app.llamacpp_pane.servers_box.use_in_chat_button.isEnabled, timeout=5_000)
        app.llamacpp_pane.servers_box.use_in_chat_button.click()
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


def test_a_connected_server_and_one_started_here_are_in_the_picker_by_themselves(qtbot, qloop):
    from desktop_app.domain.llamacpp import ManagedServerSpec, builtin_template_args
    from desktop_app.services.local.llamacpp_accounts import MANAGED_LABEL as MANAGED_LLAMACPP_LABEL

    single = LlamaServer(alias="gemma-single").start()
    app = _app(qtbot)
    try:
        pane = app.llamacpp_pane
        app.window.show_pane("llama.cpp")
        run(qtbot, pane.connect(single.base_url))
        qtbot.waitUntil(
            lambda: any(a.label == f"llama.cpp at 127.0.0.1:{single.port}" for a in app.accounts.accounts),
            timeout=10_000,
        )
        connected = next(a for a in app.accounts.accounts if a.label == f"llama.cpp at 127.0.0.1:{single.port}")
        qtbot.waitUntil(lambda: app.chat_pane.picker_model.row_of(connected.id, "gemma-single") >= 0, timeout=10_000)

        # A server started here: one account that follows it to whichever port it gets.
        spec = ManagedServerSpec(
            model=single.model,
            binary=str(single.binary),
            ctx=2048,
            threads=2,
            alias="gemma-here",
            extra_args=builtin_template_args("gemma"),
        )
        ports = []
        for _ in range(2):
            state = run(qtbot, pane.start_managed(spec), timeout=60_000)
            assert state is not None and state.status.value == "running"
            url = pane.managed.url
            ports.append(url)

            def listed(url=url):
                here = [a for a in app.accounts.accounts if a.label == MANAGED_LLAMACPP_LABEL]
                return (
                    len(here) == 1
                    and here[0].base_url == f"{url}/v1"
                    and app.chat_pane.picker_model.row_of(here[0].id, "gemma-here") >= 0
                )

            qtbot.waitUntil(listed, timeout=10_000)
            run(qtbot, pane.stop_managed(), timeout=30_000)
        assert ports[0] != ports[1]
        assert len([a for a in app.accounts.accounts if a.provider_id == "llamacpp"]) == 2
    finally:
        _close(qtbot, app)
        single.stop()


def test_servers_connected_before_are_listed_again_and_remove_drops_their_account(qtbot, qloop):
    from PySide6.QtWidgets import QMessageBox

    from desktop_app.domain.accounts import Account
    from desktop_app.services.local.llamacpp_managed import free_port
    from desktop_app.ui.llamacpp.models import ServersModel

    single = LlamaServer(alias="gemma-kept").start()
    try:
        first = _app(qtbot)
        try:
            first.window.show_pane("llama.cpp")
            run(qtbot, first.llamacpp_pane.connect(single.base_url))
            qtbot.waitUntil(lambda: any(a.provider_id == "llamacpp" for a in first.accounts.accounts), timeout=10_000)
            dead = f"http://127.0.0.1:{free_port()}"
            run(
                qtbot,
                first.accounts.save_account(
                    Account(provider_id="llamacpp", label="Old box", base_url=f"{dead}/v1"), ""
                ),
            )
        finally:
            _close(qtbot, first)

        app = _app(qtbot)  # the same settings: a restart
        try:
            pane = app.llamacpp_pane
            assert pane.servers_model.rowCount() == 0  # nothing asked before the pane is opened
            app.window.show_pane("llama.cpp")
            model = pane.servers_model
            qtbot.waitUntil(
                lambda: (
                    model.rowCount() == 2
                    and model.index(model.row_of(single.base_url), ServersModel.STATUS).data() == "Ready"
                ),
                timeout=20_000,
            )
            status = model.index(model.row_of(dead), ServersModel.STATUS).data()
            assert status and status != "Ready"  # listed, with why it does not answer

            pane.servers_box.view.selectRow(model.row_of(single.base_url))
            pane.servers_box.remove_button.click()
            box = pane.remove_dialog
            remove = next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole)
            remove.click()
            qtbot.waitUntil(
                lambda: not any(a.label == f"llama.cpp at 127.0.0.1:{single.port}" for a in app.accounts.accounts),
                timeout=10_000,
            )
            assert [a.label for a in app.accounts.accounts if a.provider_id == "llamacpp"] == ["Old box"]
            assert model.rowCount() == 1
        finally:
            _close(qtbot, app)
    finally:
        single.stop()
