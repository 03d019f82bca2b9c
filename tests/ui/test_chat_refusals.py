"""Send refuses what cannot be sent, where it was typed: the sentence above the composer (a schema's
also beside its field), the text kept, nothing stored, recorded or sent. The whole app, real services,
the loopback fault server."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ResponseFormat
from tests.ui.conftest import WAIT_MS, run

BAD_SCHEMA = '{"type": '


def chats(server) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def send_refused(qtbot, app, text: str) -> str:
    """Type `text`, press Send; the sentence shown once the refusal is said."""
    pane = app.chat_pane
    pane.show_notice("")
    pane.composer.setPlainText(text)
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.notice.isHidden() and not pane.streaming, timeout=WAIT_MS)
    return pane.notice.text()


def assert_nothing_stored_or_recorded(qtbot, app) -> None:
    conversation = app.chat_pane.current_conversation
    if conversation is not None:
        assert run(qtbot, app.store.messages(conversation.id)) == []  # no user message, no failed reply
    assert run(qtbot, app.usage.records()) == []


def test_an_empty_message_is_refused_at_send(qtbot, modeldesk, fault_account, fault_server):
    assert modeldesk.chat_pane.select_model(fault_account.id, "ok")
    sentence = send_refused(qtbot, modeldesk, "  \n ")
    assert sentence == "There is nothing to send: the message is empty. Type a message, then send."
    assert modeldesk.chat_pane.composer.toPlainText() == "  \n "
    assert modeldesk.chat_pane.current_conversation is None  # not even a conversation was made
    assert_nothing_stored_or_recorded(qtbot, modeldesk)
    assert chats(fault_server) == []


def test_without_a_model_the_message_is_refused_and_kept(qtbot, modeldesk):
    pane = modeldesk.chat_pane
    assert pane.selected_model() is None  # no account yet: nothing to pick
    sentence = send_refused(qtbot, modeldesk, "Anyone there?")
    assert sentence == "No model is selected for this conversation. Pick a model in the model picker, then send again."
    assert pane.composer.toPlainText() == "Anyone there?"
    assert run(qtbot, modeldesk.store.list_conversations()) == []
    assert_nothing_stored_or_recorded(qtbot, modeldesk)


def test_a_disabled_account_is_refused_and_the_message_kept(qtbot, modeldesk, fault_account, fault_server):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.new_conversation())
    run(qtbot, modeldesk.accounts.set_enabled(fault_account.id, False))
    qtbot.waitUntil(lambda: pane.selected_model() is None, timeout=WAIT_MS)  # its models left the picker

    sentence = send_refused(qtbot, modeldesk, "Still there?")
    assert sentence == "Account “Fault lab” is disabled. Enable it in Accounts, or pick another model."
    assert pane.composer.toPlainText() == "Still there?"
    assert_nothing_stored_or_recorded(qtbot, modeldesk)
    assert chats(fault_server) == []


def test_an_account_without_its_key_is_refused_and_the_message_kept(qtbot, modeldesk, fault_server):
    cloud = Account(provider_id="openai", label="Cloud", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(cloud, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(cloud.id))
    run(qtbot, modeldesk.secrets.delete(cloud.id))  # the keyring lost it (another tool, a new keyring...)
    assert modeldesk.chat_pane.select_model(cloud.id, "ok")

    sentence = send_refused(qtbot, modeldesk, "Hello cloud")
    assert sentence == "Account “Cloud” has no key. Open Accounts and add the key."
    assert modeldesk.chat_pane.composer.toPlainText() == "Hello cloud"
    assert_nothing_stored_or_recorded(qtbot, modeldesk)
    assert chats(fault_server) == []


def test_an_invalid_json_schema_is_refused_and_named_beside_its_field(qtbot, modeldesk, fault_account, fault_server):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    params = pane.params
    params.response_format.setCurrentIndex(params.response_format.findData(ResponseFormat.JSON_SCHEMA.value))
    params.json_schema.setPlainText(BAD_SCHEMA)
    assert params.schema_problem.isHidden()  # nothing is said while it is being typed

    sentence = send_refused(qtbot, modeldesk, "Answer in JSON")
    assert sentence == (
        "The JSON schema is not valid JSON (Expecting value at line 1). Fix the JSON schema in the parameters panel."
    )
    assert not params.schema_problem.isHidden()
    assert params.schema_problem.text() == "The JSON schema is not valid JSON (Expecting value at line 1)."
    assert pane.composer.toPlainText() == "Answer in JSON"
    assert params.json_schema.toPlainText() == BAD_SCHEMA
    assert_nothing_stored_or_recorded(qtbot, modeldesk)
    assert chats(fault_server) == []

    params.json_schema.setPlainText('{"type": "object"}')  # fixing it takes the sentence away
    assert params.schema_problem.isHidden()
