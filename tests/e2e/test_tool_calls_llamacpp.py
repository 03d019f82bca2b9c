"""The whole app, in a real window, offering a tool to a real llama-server started with --jinja.

The Gemma 270M test model does not call tools (it answers in words even with tool_choice
"required"), so this holds the request's shape end to end: the tool defined in the Tools tab goes
out, llama-server takes it, the reply streams, and View as code holds the tools."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.request_code import request_snippets
from desktop_app.services.paths import AppPaths
from tests.servers.llama import LlamaServer
from tests.ui.conftest import run

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_a_tool_from_the_tools_tab_goes_to_llama_server_and_into_view_as_code(qtbot, qloop, connection_log):
    with LlamaServer(jinja=True) as server:
        app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
        app.window.show()
        qtbot.waitExposed(app.window)
        run(qtbot, app.start())
        try:
            account = Account(provider_id="llamacpp", label="Local gemma", base_url=f"{server.base_url}/v1")
            run(qtbot, app.accounts.save_account(account, ""))
            run(qtbot, app.accounts.refresh_models(account.id))
            app.window.show_pane("Chat")
            chat = app.chat_pane
            assert chat.select_model(account.id, "gemma")
            chat.params.max_tokens.setValue(16)
            tab = chat.params.tools_tab
            assert tab.isEnabled()  # LiteLLM says llama-server takes tools
            tab.name.setText("get_weather")
            tab.description.setText("The weather in a city")
            tab.parameters.setPlainText(json.dumps(WEATHER))
            qtbot.mouseClick(tab.add_button, Qt.MouseButton.LeftButton)
            qtbot.keyClicks(chat.composer, "What is the weather in Paris?")
            with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as finished:
                qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
            assert finished.args == ["complete"], chat.transcript.toPlainText()
            [_, reply] = run(qtbot, app.store.messages(chat.current_conversation.id))
            assert reply.request is not None
            assert reply.request.params["tools"][0]["function"]["name"] == "get_weather"
            assert all("get_weather" in s.text for s in request_snippets(reply.request))
            # Loopback only: nothing of this went anywhere else.
            assert all(tuple(addr)[:1] == ("127.0.0.1",) for addr in connection_log.internet_connects())  # type: ignore[arg-type]
        finally:
            run(qtbot, app.aclose())
            app.window.close()
            app.window.deleteLater()
