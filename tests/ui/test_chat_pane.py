"""The chat playground against the loopback fault server, through the real service layer."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.conversations import MessageStatus
from tests.ui.conftest import WAIT_MS, run


def _pick(qtbot, app, account, model: str) -> None:
    assert app.chat_pane.select_model(account.id, model), f"{model} is not in the picker"


def _send(qtbot, app, text: str, expect: str, timeout: int = 30_000) -> None:
    pane = app.chat_pane
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=timeout) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [expect]


def _stored(qtbot, app):
    conversation = app.chat_pane.current_conversation
    return run(qtbot, app.store.messages(conversation.id))


def test_streams_a_reply_with_metrics_and_stores_it(qtbot, modeldesk, fault_account):
    _pick(qtbot, modeldesk, fault_account, "ok")
    _send(qtbot, modeldesk, "Hello there", "complete")
    transcript = modeldesk.chat_pane.transcript
    assert transcript.plain_text_of_last_message().startswith("word0 word1")
    html = transcript.toPlainText()
    assert "tok/s" in html and "TTFT" in html and "40 out tokens" in html
    user, reply = _stored(qtbot, modeldesk)
    assert (user.role, user.content) == ("user", "Hello there")
    assert reply.status is MessageStatus.COMPLETE and reply.content.startswith("word0")
    assert reply.metrics.completion_tokens == 40


@pytest.mark.parametrize(
    ("model", "sentence"),
    [
        ("fault-401", "The provider rejected the key of account “Fault lab”."),
        ("fault-403", "Account “Fault lab” is not allowed to use fault-403."),
        ("fault-404", "Model fault-404 was not found on account “Fault lab”."),
        ("fault-429", "Account “Fault lab” is rate-limited by the provider. Try again in 7 s."),
        ("fault-500", "had an internal error (HTTP 500)."),
        ("fault-context", "The conversation is longer than fault-context's context window."),
        ("fault-cut", "was cut before the reply finished."),
        ("fault-malformed", "sent a reply ModelDesk could not read (malformed data in the stream)."),
    ],
)
def test_each_fault_says_one_sentence_and_loses_nothing(qtbot, modeldesk, fault_account, model, sentence):
    _pick(qtbot, modeldesk, fault_account, model)
    _send(qtbot, modeldesk, f"please trigger {model}", "failed")
    shown = modeldesk.chat_pane.transcript.toPlainText()
    assert sentence in shown
    assert f"please trigger {model}" in shown  # the user's message stays on screen
    assert "Retry" in shown
    user, reply = _stored(qtbot, modeldesk)
    assert user.content == f"please trigger {model}"  # ...and in the store
    assert reply.status is MessageStatus.FAILED and sentence in reply.error
    if model == "fault-cut":
        assert reply.content == "".join(f"part{i} " for i in range(10))  # the partial text is kept
        assert "part9" in shown
    if model == "fault-malformed":
        assert reply.content  # the good chunks before the broken one are kept


def test_stalled_stream_times_out_with_partial_text_kept(qtbot, modeldesk, fault_account):
    run(qtbot, modeldesk.settings.update(request_timeout_s=1.0))
    _pick(qtbot, modeldesk, fault_account, "fault-stall")
    _send(qtbot, modeldesk, "stall please", "failed")
    assert "did not answer in time." in modeldesk.chat_pane.transcript.toPlainText()
    _, reply = _stored(qtbot, modeldesk)
    assert reply.status is MessageStatus.FAILED and reply.content


def test_unreachable_server_is_said_plainly(qtbot, modeldesk):
    from desktop_app.domain.accounts import Account
    from tests.servers.process import free_port

    account = Account(provider_id="llamacpp", label="Gone", base_url=f"http://127.0.0.1:{free_port()}/v1")
    run(qtbot, modeldesk.accounts.save_account(account, ""))
    modeldesk.catalog._remember(account.id, ("gemma",))  # a list fetched while it was still up
    modeldesk.chat_pane._reload_picker()
    assert modeldesk.chat_pane.select_model(account.id, "gemma")
    _send(qtbot, modeldesk, "anyone there?", "failed")
    assert "Could not connect to 127.0.0.1:" in modeldesk.chat_pane.transcript.toPlainText()


def test_retry_after_a_failure_answers_with_the_same_question(qtbot, modeldesk, fault_account):
    _pick(qtbot, modeldesk, fault_account, "fault-500")
    _send(qtbot, modeldesk, "question once", "failed")
    _pick(qtbot, modeldesk, fault_account, "ok")
    pane = modeldesk.chat_pane
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        pane.transcript.retry_requested.emit()
    assert blocker.args == ["complete"]
    messages = _stored(qtbot, modeldesk)
    assert [(m.role, m.status) for m in messages] == [
        ("user", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.COMPLETE),
    ]
    assert messages[0].content == "question once"


def test_stop_closes_the_stream_and_keeps_the_partial_reply(qtbot, modeldesk, fault_account, fault_server):
    _pick(qtbot, modeldesk, fault_account, "slow")
    pane = modeldesk.chat_pane
    pane.composer.setPlainText("go slowly")
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "word5" in pane.transcript.plain_text_of_last_message(), timeout=30_000)
    # The partial text reaches the store while it streams (saved at least every 0.5 s).
    qtbot.waitUntil(lambda: "word" in _stored(qtbot, modeldesk)[-1].content, timeout=5_000)
    with qtbot.waitSignal(pane.reply_finished, timeout=10_000) as blocker:
        qtbot.keyClick(pane.composer, Qt.Key.Key_Escape)
    assert blocker.args == ["stopped"]
    assert fault_server.client_disconnected.wait(5)  # the HTTP stream really closed
    _, reply = _stored(qtbot, modeldesk)
    assert reply.status is MessageStatus.STOPPED
    assert reply.content.startswith("word0") and "word499" not in reply.content
    assert "Stopped" in pane.transcript.toPlainText()


def test_twenty_thousand_chunks_arrive_whole(qtbot, modeldesk, fault_account):
    _pick(qtbot, modeldesk, fault_account, "fast-20000")
    _send(qtbot, modeldesk, "flood", "complete", timeout=120_000)
    _, reply = _stored(qtbot, modeldesk)
    assert reply.metrics.completion_tokens == 20_000
    assert len(reply.content.split()) == 20_000


def test_conversation_remembers_model_and_parameters(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    _pick(qtbot, modeldesk, fault_account, "ok")
    pane.params.system_prompt.setPlainText("You are terse.")
    pane.params.temperature.setValue(0.3)
    pane.params.max_tokens.setValue(12)
    _send(qtbot, modeldesk, "first", "complete")
    first = pane.current_conversation
    body = modeldesk  # the server saw what the panel said
    run(qtbot, pane.new_conversation())
    pane.params.system_prompt.setPlainText("")
    _pick(qtbot, body, fault_account, "slow")
    run(qtbot, pane.open_conversation(first))
    assert pane.params.system_prompt.toPlainText() == "You are terse."
    assert pane.params.params().temperature == 0.3
    assert pane.selected_model() == (fault_account.id, "ok")


def test_parameters_reach_the_server(qtbot, modeldesk, fault_account, fault_server):
    pane = modeldesk.chat_pane
    _pick(qtbot, modeldesk, fault_account, "ok")
    pane.params.system_prompt.setPlainText("Be brief.")
    pane.params.temperature.setValue(0.5)
    pane.params.top_p.setValue(0.9)
    pane.params.max_tokens.setValue(7)
    pane.params.seed.setValue(42)
    pane.params.stop.setPlainText("END")
    pane.params.response_format.setCurrentIndex(1)  # JSON object
    _send(qtbot, modeldesk, "params please", "complete")
    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9 and body["max_tokens"] == 7
    assert body["seed"] == 42 and body["stop"] == ["END"]
    assert body["response_format"] == {"type": "json_object"}


def test_a_thousand_stop_sequences_are_cut_to_four_and_the_pane_says_so(qtbot, modeldesk, fault_account, fault_server):
    pane = modeldesk.chat_pane
    _pick(qtbot, modeldesk, fault_account, "ok")
    pane.params.stop.setPlainText("\n".join(f"STOP{i}" for i in range(1000)))
    _send(qtbot, modeldesk, "stop here", "complete")

    assert "Sent only the first 4 of the 1,000 stop sequences" in pane.notice.text()
    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert body["stop"] == ["STOP0", "STOP1", "STOP2", "STOP3"]


def test_conversations_new_rename_delete(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    _pick(qtbot, modeldesk, fault_account, "ok")
    _send(qtbot, modeldesk, "a question about whales", "complete")
    assert pane.conversations.data(pane.conversations.index(0)) == "a question about whales"
    run(qtbot, pane.rename_current("Whales"))
    assert pane.conversations.data(pane.conversations.index(0)) == "Whales"
    run(qtbot, pane.new_conversation())
    assert pane.conversations.rowCount() == 2
    run(qtbot, pane.delete_current())
    assert pane.conversations.rowCount() == 1
    assert run(qtbot, modeldesk.store.list_conversations())[0].title == "Whales"


def test_conversation_list_model(qtmodeltester, qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    for _ in range(3):
        run(qtbot, pane.new_conversation())
    qtmodeltester.check(pane.conversations)
    qtmodeltester.check(pane.picker_model)


def test_the_key_never_lands_in_our_files(qtbot, modeldesk, fault_server, isolated_home):
    import logging

    from desktop_app.domain.accounts import Account
    from desktop_app.services.logs import setup_logging

    secret = "sk-live-7f3a9c2e51d84b6a"
    fault_server.valid_keys.add(secret)
    setup_logging(modeldesk.paths.log_dir, level=logging.DEBUG)
    try:
        account = Account(provider_id="openai_compatible", label="Secret lab", base_url=fault_server.base_url)
        run(qtbot, modeldesk.accounts.save_account(account, secret))
        run(qtbot, modeldesk.accounts.refresh_models(account.id))
        assert modeldesk.chat_pane.select_model(account.id, "ok")
        _send(qtbot, modeldesk, "hello", "complete")
        assert modeldesk.chat_pane.select_model(account.id, "fault-401")
        _send(qtbot, modeldesk, "and a failure", "failed")
        run(qtbot, modeldesk.store.close())
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "baseFilename", "").startswith(str(isolated_home)):
                logging.getLogger().removeHandler(handler)
                handler.close()
    files = [p for p in isolated_home.rglob("*") if p.is_file()]
    assert any(p.name == "modeldesk.log" for p in files) and any(p.suffix == ".sqlite3" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"the key leaked into {path}"
    assert secret not in modeldesk.chat_pane.transcript.toPlainText()


def test_picking_a_model_shows_what_litellm_knows_of_it(qtbot, modeldesk):
    from desktop_app.domain.accounts import Account

    account = Account(provider_id="anthropic", label="Claude, work")
    run(qtbot, modeldesk.accounts.save_account(account, "sk-ant-not-used"))
    modeldesk.catalog._remember(account.id, ("claude-sonnet-4-5",))
    modeldesk.chat_pane._reload_picker()
    assert modeldesk.chat_pane.select_model(account.id, "claude-sonnet-4-5")
    label = modeldesk.chat_pane.model_info
    qtbot.waitUntil(lambda: "context" in label.text(), timeout=20_000)
    assert "200K context" in label.text() and "per M tokens" in label.text()


def test_a_local_model_slow_to_start_shows_a_loading_line_until_text_arrives(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    _pick(qtbot, modeldesk, fault_account, "delay-2500")
    pane.composer.setPlainText("are you loaded?")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as finished:
        pane.send_button.click()
        qtbot.waitUntil(lambda: "Loading delay-2500 on Fault lab" in pane.notice.text(), timeout=10_000)
    assert finished.args == ["complete"]
    assert "Loading" not in pane.notice.text()


def test_refresh_falls_back_to_litellms_list_when_a_cloud_provider_is_unreachable(qtbot, modeldesk):
    from desktop_app.domain.accounts import Account
    from tests.servers.process import free_port

    account = Account(provider_id="anthropic", label="Offline Claude", base_url=f"http://127.0.0.1:{free_port()}")
    run(qtbot, modeldesk.accounts.save_account(account, "sk-ant-unused"))
    pane = modeldesk.chat_pane
    with qtbot.waitSignal(pane.models_refreshed, timeout=30_000):
        pane.refresh_button.click()
    import html

    shown = html.unescape(pane.notice.text())  # the notice is rich text
    assert "Offline Claude: From LiteLLM's bundled list: the provider could not be reached." in shown
    assert pane.select_model(account.id, "claude-sonnet-4-5")


def test_a_newcomer_sees_what_to_do_next_and_the_button_for_it(qtbot, modeldesk):
    pane = modeldesk.chat_pane
    modeldesk.window.show_pane("Chat")
    assert pane.empty_state.isVisible()
    assert pane.empty_label.text().startswith("No models to chat with yet")
    pane.empty_button.click()
    assert modeldesk.window.stack.currentWidget() is modeldesk.accounts_pane


def test_the_empty_state_goes_once_there_are_models(qtbot, modeldesk, fault_account):
    assert not modeldesk.chat_pane.empty_state.isVisibleTo(modeldesk.chat_pane)


def test_a_fresh_panel_leaves_every_parameter_to_the_server(qtbot, modeldesk):
    params = modeldesk.chat_pane.params
    assert params.params() == params.params().__class__()  # all defaults: nothing is sent
    assert params.temperature.text() == "default" and params.seed.text() == "random"


def test_litellm_waits_until_the_first_keystroke_in_the_composer(qtbot, modeldesk):
    """LiteLLM (~160 MB) is not imported at start-up; typing a message is the sign to load it."""
    assert not modeldesk.engine.started
    modeldesk.window.show_pane("Chat")
    qtbot.keyClicks(modeldesk.chat_pane.composer, "H")
    assert modeldesk.engine.started
    run(qtbot, modeldesk.engine.litellm(), timeout=120_000)
    assert modeldesk.engine.loaded


def test_a_cloud_model_picked_last_time_shows_its_details_at_the_next_start_without_litellm(qtbot, qloop):
    """A Claude user's start-up: the picked model's details were kept, so LiteLLM waits for a request."""
    from desktop_app.app import ModelDeskApp
    from desktop_app.domain.accounts import Account
    from desktop_app.services.paths import AppPaths
    from tests.servers.anthropic_fault import AnthropicServer

    def start() -> ModelDeskApp:
        app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
        app.window.show()
        qtbot.waitExposed(app.window)
        run(qtbot, app.start())
        return app

    def close(app: ModelDeskApp) -> None:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()

    with AnthropicServer() as server:
        first = start()
        try:
            account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
            run(qtbot, first.accounts.save_account(account, "sk-ant-test-a"))
            run(qtbot, first.accounts.refresh_models(account.id))
            run(qtbot, first.chat_pane.new_conversation())
            assert first.chat_pane.select_model(account.id, "claude-sonnet-4-5")
            # Sonnet's price, not the first model the picker showed (Haiku, also 200K).
            qtbot.waitUntil(lambda: "$3.00 / $15.00" in first.chat_pane.model_info.text(), timeout=60_000)
            details = first.chat_pane.model_info.text()
            assert first.engine.started  # the first time, LiteLLM's map was asked
        finally:
            close(first)

        again = start()
        try:
            # The last conversation opens once the list is loaded (a task of its own, after start()).
            qtbot.waitUntil(
                lambda: again.chat_pane.selected_model() == (account.id, "claude-sonnet-4-5"), timeout=WAIT_MS
            )
            qtbot.waitUntil(lambda: again.chat_pane.model_info.text() == details, timeout=WAIT_MS)
            assert not again.engine.started
        finally:
            close(again)
