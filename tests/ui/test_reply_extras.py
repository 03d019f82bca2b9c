"""Around a reply's answer: its reasoning in a fold (open while only reasoning arrives, folded once
the answer starts, with its tokens and time), and a reply asked for as JSON checked in its footer,
with a pretty/raw view. The transcript alone, then the whole app against the loopback server."""

from __future__ import annotations

import html
import json

import pytest
from PySide6.QtCore import Qt, QUrl

from desktop_app.domain.chat import ResponseFormat
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.ui.chat.transcript import TranscriptView
from tests.servers.openai_fault import REASONING_PIECES
from tests.ui.conftest import run

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
PERSON = '{"name": "Ada", "age": 36}'


@pytest.fixture
def view(qtbot) -> TranscriptView:
    widget = TranscriptView()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _request(response_format: dict | None) -> SentRequest:
    params = {"response_format": response_format} if response_format else {}
    return SentRequest(
        account_id="a", provider_id="openai", base_url="", api_base=None, litellm_model="openai/m", model="m",
        messages=({"role": "user", "content": "Who?"},), params=params,
    )  # fmt: skip


def _schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def _click(view: TranscriptView, href: str) -> None:
    view.anchorClicked.emit(QUrl(href))


def test_reasoning_shows_while_it_arrives_and_folds_once_the_answer_starts(view):
    view.add_user_message("Hi")
    view.begin_assistant_message()
    view.append_reasoning("The user greets me; ")
    view.append_reasoning("a short answer suits.")
    assert "Thinking ▾" in view.toPlainText()
    assert "The user greets me; a short answer suits." in view.toPlainText()
    view.append_text("Hello ")
    assert "Thinking ▸" in view.toPlainText() and "greets me" not in view.toPlainText()
    view.append_reasoning(" Be warm.")  # late reasoning joins the folded text
    view.append_text("there!")
    view.finish_assistant_message(footer="TTFT 5 ms", thinking="1,234 tokens, 3.2 s")
    shown = view.toPlainText()
    assert "Thinking (1,234 tokens, 3.2 s) ▸" in shown and "greets me" not in shown
    assert view.plain_text_of_last_message() == "Hello there!"

    _click(view, "thinking:0")
    shown = view.toPlainText()
    assert shown.index("Thinking (1,234 tokens, 3.2 s) ▾") < shown.index("a short answer suits. Be warm.")
    assert shown.index("Be warm.") < shown.index("Hello there!") < shown.index("TTFT 5 ms")
    assert view.plain_text_of_last_message() == "Hello there!"
    _click(view, "thinking:0")
    assert "Be warm" not in view.toPlainText() and view.plain_text_of_last_message() == "Hello there!"


def test_a_stored_reply_shows_its_reasoning_folded_and_an_earlier_fold_opens_while_one_streams(view):
    view.add_assistant_message("First answer.", reasoning="Old thoughts.", thinking="2.0 s")
    assert "Thinking (2.0 s) ▸" in view.toPlainText() and "Old thoughts" not in view.toPlainText()
    view.add_assistant_message("No reasoning here.")
    assert view.toPlainText().count("Thinking") == 1  # a reply without reasoning has no fold
    view.begin_assistant_message()
    view.append_reasoning("New thoughts.")
    view.append_text("Streaming ")
    _click(view, "thinking:0")  # the earlier reply's fold opens above the streaming one
    view.append_text("**answer**\n\nmore")
    view.finish_assistant_message()
    shown = view.toPlainText()
    assert shown.index("Old thoughts.") < shown.index("First answer.") < shown.index("Streaming answer")
    assert view.plain_text_of_last_message() == "Streaming answer\nmore"
    _click(view, "thinking:1")
    assert "New thoughts." in view.toPlainText() and view.plain_text_of_last_message() == "Streaming answer\nmore"


@pytest.mark.parametrize(
    ("response_format", "reply", "badge"),
    [
        (_schema_format(SCHEMA), PERSON, "✓ Valid JSON, matches the schema."),
        (
            _schema_format(SCHEMA),
            '{"name": "Ada", "age": "36"}',
            "✗ Does not match the schema at $.age: '36' is not of type 'integer'.",
        ),
        ({"type": "json_object"}, PERSON, "✓ Valid JSON object."),
        ({"type": "json_object"}, '{"name": "Ada",', "✗ Not valid JSON: Expecting property name enclosed in double"),
    ],
    ids=["schema-valid", "schema-invalid", "object", "broken"],
)
def test_a_reply_asked_for_as_json_is_checked_in_its_footer(view, response_format, reply, badge):
    view.add_assistant_message(reply, footer="TTFT 5 ms", request=_request(response_format))
    footer = view.toPlainText().splitlines()[-1]
    assert footer.startswith("TTFT 5 ms  ·  View as code  ·  " + badge)
    assert footer.endswith("  ·  Pretty view")
    colour = view._colours.ok if badge.startswith("✓") else view._colours.error
    assert view.document().find(badge[2:]).charFormat().foreground().color().name() == colour


def test_a_reply_asked_for_as_text_gets_no_json_badge(view):
    view.add_assistant_message(PERSON, footer="TTFT 5 ms", request=_request(None))
    assert view.toPlainText().splitlines()[-1] == "TTFT 5 ms  ·  View as code"


def test_the_pretty_view_indents_the_json_and_the_raw_view_shows_it_as_received(view):
    raw = '{"name": "Ada",   "tags": ["a", "b"]}'
    view.add_user_message("Who?")
    view.add_assistant_message(raw, footer="f", request=_request({"type": "json_object"}))
    view.add_user_message("And now?")
    view.begin_assistant_message()
    view.append_text("Still ")
    _click(view, "json:0")  # while a later reply streams
    pretty = json.dumps(json.loads(raw), indent=2)
    assert pretty in view.toPlainText() and "Raw view" in view.toPlainText()
    assert "monospace" in str(view.document().find('"tags": [').charFormat().fontFamilies()) or (
        view.document().find('"tags": [').charFormat().fontFixedPitch()
        or view.document().find('"tags": [').block().blockFormat().nonBreakableLines()
    )
    view.append_text("streaming.")
    view.finish_assistant_message()
    assert view.plain_text_of_last_message() == "Still streaming."
    _click(view, "json:0")
    shown = view.toPlainText()
    assert raw in shown and pretty not in shown and "Pretty view" in shown
    assert shown.index(raw) < shown.index("And now?") < shown.index("Still streaming.")


def test_a_reply_that_is_not_json_has_nothing_to_indent(view):
    view.add_assistant_message("Sorry, no.", request=_request({"type": "json_object"}))
    before = view.toPlainText()
    _click(view, "json:0")
    assert view.toPlainText() == before


# --- the whole app -----------------------------------------------------------------------------


def _send(qtbot, pane, text: str) -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["complete"]


def test_reasoning_content_is_folded_with_its_tokens_and_time_and_so_when_reopened(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "reasoner")
    _send(qtbot, pane, "Hello")
    label = next(line for line in pane.transcript.toPlainText().splitlines() if line.startswith("Thinking ("))
    assert label.startswith(f"Thinking ({len(REASONING_PIECES)} tokens, ") and label.endswith(" s) ▸")
    [stored] = [m for m in run(qtbot, modeldesk.store.messages(pane.current_conversation.id)) if m.role != "user"]
    assert stored.reasoning == "".join(REASONING_PIECES) and stored.metrics.reasoning_tokens == len(REASONING_PIECES)

    run(qtbot, pane.open_conversation(pane.current_conversation))
    assert label in pane.transcript.toPlainText() and "greets me" not in pane.transcript.toPlainText()
    pane.transcript.anchorClicked.emit(QUrl("thinking:0"))
    assert "".join(REASONING_PIECES) in pane.transcript.toPlainText()


def test_a_json_reply_is_checked_against_the_schema_sent(qtbot, modeldesk, fault_account):
    pane, params = modeldesk.chat_pane, modeldesk.chat_pane.params
    assert pane.select_model(fault_account.id, "json-person")
    params.response_format.setCurrentIndex(params.response_format.findData(ResponseFormat.JSON_SCHEMA.value))
    params.json_schema.setPlainText(json.dumps(SCHEMA))
    _send(qtbot, pane, "Who?")
    footer = pane.transcript.toPlainText().splitlines()[-1]
    assert "✗ Does not match the schema at $.age: '36' is not of type 'integer'." in footer
    run(qtbot, pane.open_conversation(pane.current_conversation))  # the stored request says what was asked
    assert "✗ Does not match the schema at $.age" in pane.transcript.toPlainText().splitlines()[-1]


def test_a_schema_that_is_not_a_json_schema_is_refused_beside_its_field_and_nothing_lost(
    qtbot, modeldesk, fault_account, fault_server
):
    pane, params = modeldesk.chat_pane, modeldesk.chat_pane.params
    assert pane.select_model(fault_account.id, "json-person")
    params.response_format.setCurrentIndex(params.response_format.findData(ResponseFormat.JSON_SCHEMA.value))
    params.json_schema.setPlainText('{"type": "objekt"}')  # JSON, but no JSON Schema
    pane.composer.setPlainText("Who?")
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.notice.isHidden() and not pane.streaming)
    problem = "The JSON schema is not a valid schema: 'objekt' is not valid under any of the given schemas (at $.type)."
    assert params.schema_problem.text() == problem and not params.schema_problem.isHidden()
    assert html.unescape(pane.notice.text()).startswith(problem)
    assert pane.composer.toPlainText() == "Who?" and params.json_schema.toPlainText() == '{"type": "objekt"}'
    assert not [r for r in fault_server.requests if r.path.endswith("/chat/completions")]


def test_a_link_from_before_the_transcript_was_cleared_changes_nothing(view):
    view.add_assistant_message("Answer.", reasoning="Thoughts.", request=_request({"type": "json_object"}))
    view.clear_transcript()
    view.add_assistant_message("Plain.")
    before = view.toPlainText()
    _click(view, "thinking:0")
    _click(view, "json:0")
    assert view.toPlainText() == before
