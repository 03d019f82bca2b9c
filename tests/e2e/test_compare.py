"""Compare mode in a real window: two models of a real llama-server router and a loopback OpenAI
server whose column fails (401) while the others finish; the comparison is back after a restart."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.paths import AppPaths
from tests.servers.llama import LlamaServer
from tests.servers.openai_fault import FaultServer
from tests.ui.conftest import run


@pytest.fixture(scope="module")
def llama_router():
    # --ignore-eos: every reply runs to its max tokens (the tiny model may otherwise end at once).
    server = LlamaServer(extra_args=("--ignore-eos",), router_names=("gemma-a", "gemma-b"))
    server.start()
    yield server
    server.stop()


def _start_app(qtbot) -> ModelDeskApp:
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    return app


def _close_app(qtbot, app: ModelDeskApp) -> None:
    run(qtbot, app.aclose())
    app.window.close()
    app.window.deleteLater()


def test_three_columns_two_local_models_and_a_failing_cloud_one(qtbot, qloop, llama_router, connection_log):
    app = _start_app(qtbot)
    with FaultServer() as cloud:
        local = Account(provider_id="llamacpp", label="Router", base_url=f"{llama_router.base_url}/v1")
        lab = Account(provider_id="openai_compatible", label="Cloud lab", base_url=cloud.base_url)
        for account, key in ((local, ""), (lab, "sk-test")):
            run(qtbot, app.accounts.save_account(account, key))
            run(qtbot, app.accounts.refresh_models(account.id), timeout=60_000)
        app.window.show_pane("Chat")
        pane = app.chat_pane
        pane._reload_picker()
        pane.params.max_tokens.setValue(12)
        assert pane.select_model(local.id, "gemma-a")
        qtbot.mouseClick(pane.compare_button, Qt.MouseButton.LeftButton)
        view = pane.compare
        qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
        targets = [(local.id, "gemma-a"), (local.id, "gemma-b"), (lab.id, "fault-401")]
        for column, target in zip(view.columns, targets, strict=True):
            assert column.set_target(*target), f"{target} is not in the picker"
        qtbot.keyClicks(view.composer, "Name three colours.")
        with qtbot.waitSignal(view.turn_finished, timeout=180_000) as finished:
            qtbot.keyClick(view.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert finished.args == [["complete", "complete", "failed"]]
    for column in view.columns[:2]:
        assert "12 out tokens" in column.transcript.toPlainText()
    assert "The provider rejected the key of account “Cloud lab”." in view.columns[2].transcript.toPlainText()
    summary = view.summary.summary
    assert [summary.index(r, 6).data() for r in range(3)] == ["length", "length", "error"]
    assert connection_log.internet_connects() and all(
        host == "127.0.0.1" for host, *_ in connection_log.internet_connects()
    )
    compared = view.conversation.id
    _close_app(qtbot, app)

    app = _start_app(qtbot)
    pane = app.chat_pane
    qtbot.waitUntil(lambda: pane.current_conversation is not None, timeout=10_000)
    assert pane.current_conversation.id == compared and pane.comparing
    view = pane.compare
    qtbot.waitUntil(lambda: "Name three colours." in view.columns[0].transcript.toPlainText(), timeout=10_000)
    assert [c.target() for c in view.columns] == targets
    assert "12 out tokens" in view.columns[1].transcript.toPlainText()
    last = run(qtbot, app.store.messages(compared, lane=3))[-1]
    assert last.status is MessageStatus.FAILED
    _close_app(qtbot, app)
