"""Tool calls in the chat pane: the Tools tab, the cards a reply's calls make, and answering them,
round after round, against the loopback OpenAI server through the whole app."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from desktop_app.domain.tools import ToolCall, ToolCallDelta, ToolCalls, ToolSpec
from desktop_app.ui.chat.tool_cards import ToolCallsPanel
from tests.ui.conftest import WAIT_MS, run

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _chat_bodies(server) -> list[dict]:
    return [r.json() for r in server.requests if r.path.endswith("/chat/completions")]


def _send(qtbot, pane, text: str) -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)


def test_tools_defined_in_the_tab_are_called_and_answered_over_two_rounds(
    qtbot, modeldesk, fault_account, fault_server
):
    pane = modeldesk.chat_pane
    tab = pane.params.tools_tab
    assert pane.select_model(fault_account.id, "tools-2")

    # A pasted array that is not one: one sentence, and the text stays.
    tab.pasted.setPlainText('[{"type": "function"}]')
    tab.paste_button.click()
    assert tab.problem.text() == "Tool 1 is not a function with a name." and tab.problem.isVisibleTo(tab)
    assert tab.pasted.toPlainText() == '[{"type": "function"}]'
    # The small form adds a function.
    tab.name.setText("get_weather")
    tab.description.setText("The weather in a city")
    tab.parameters.setPlainText(json.dumps(WEATHER_SCHEMA))
    tab.add_button.click()
    assert not tab.problem.isVisibleTo(tab) and tab.list.count() == 1
    assert [t.name for t in pane.params.params().tools] == ["get_weather"]

    _send(qtbot, pane, "Weather in Paris?")
    [body] = _chat_bodies(fault_server)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    panel = pane.tool_calls
    assert panel.isVisibleTo(pane) and len(panel.cards) == 1
    card = panel.cards[0]
    assert card.title.text() == "Call: get_weather"
    assert json.loads(card.arguments.toPlainText()) == {"city": "Paris"}
    assert card.verdict.text() == "✓ Arguments match the schema."
    assert "get_weather" in pane.transcript.toPlainText()

    # A result marked as JSON that is not: said on the card, nothing sent, nothing lost.
    card.answer.setPlainText("{sky: clear}")
    card.as_json.setChecked(True)
    panel.send_button.click()
    assert card.problem.text().startswith("The result is not valid JSON") and card.problem.isVisibleTo(card)
    assert card.answer.toPlainText() == "{sky: clear}" and len(_chat_bodies(fault_server)) == 1

    # Fixed: sent; the model calls again (a second round), then answers with the result.
    card.answer.setPlainText('{"sky": "clear"}')
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        panel.send_button.click()
    second = _chat_bodies(fault_server)[1]
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["content"] == '{"sky": "clear"}'
    qtbot.waitUntil(lambda: len(panel.cards) == 1 and panel.send_button.isEnabled(), timeout=WAIT_MS)
    panel.cards[0].answer.setPlainText("rain later")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        panel.send_button.click()
    assert not panel.isVisibleTo(pane)
    assert "Tool said: rain later" in pane.transcript.toPlainText()
    roles = [m.role for m in run(qtbot, modeldesk.store.messages(pane.current_conversation.id))]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    # A result is headed as one, not as the user's words, as sent and when opened again.
    for _ in range(2):
        shown = pane.transcript.toPlainText()
        assert shown.count("Tool result") == 2 and shown.count("You") == 1, shown
        run(qtbot, pane.open_conversation(pane.current_conversation))


def test_calls_waiting_for_results_come_back_when_the_conversation_is_opened_again(
    qtbot, modeldesk, fault_account, fault_server
):
    pane = modeldesk.chat_pane
    tab = pane.params.tools_tab
    assert pane.select_model(fault_account.id, "ok")
    tab.pasted.setPlainText(json.dumps([{"type": "function", "function": {"name": "now"}}]))
    tab.paste_button.click()
    tab.parallel.setChecked(False)
    _send(qtbot, pane, "What time is it?")
    assert _chat_bodies(fault_server)[0]["parallel_tool_calls"] is False
    first = pane.current_conversation
    run(qtbot, pane.new_conversation())
    assert not pane.tool_calls.isVisibleTo(pane)
    run(qtbot, pane.open_conversation(first))
    assert pane.tool_calls.isVisibleTo(pane) and pane.tool_calls.cards[0].title.text() == "Call: now"
    assert [t.name for t in pane.params.tools_tab.tools()] == ["now"]


def test_a_card_fills_in_as_the_pieces_stream_then_is_checked(qtbot):
    panel = ToolCallsPanel()
    qtbot.addWidget(panel)
    shown: list[str] = []
    weather = ToolSpec(name="get_weather", parameters=WEATHER_SCHEMA)
    panel.on_event(ToolCallDelta(0, "c1", "get_weather"), (weather,), shown.append)
    assert not panel.isHidden() and panel.cards[0].title.text() == "Call: get_weather"
    panel.on_event(ToolCallDelta(0, arguments='{"ci'), (weather,), shown.append)
    panel.on_event(ToolCallDelta(0, arguments='ty": 3}'), (weather,), shown.append)
    card = panel.cards[0]
    assert card.arguments.toPlainText() == '{"city": 3}' and card.verdict.text() == "Arriving…"
    assert not card.answer.isEnabled() and not panel.send_button.isEnabled() and shown == []

    panel.on_event(ToolCalls((ToolCall("c1", "get_weather", '{"city": 3}'),)), (weather,), shown.append)
    assert card.verdict.text() == "✗ 3 is not of type 'string' (at $.city)"
    assert card.answer.isEnabled() and panel.send_button.isEnabled()
    assert shown and "get_weather" in shown[0]
    # No result typed: said on the card, nothing sent.
    with qtbot.assertNotEmitted(panel.results_ready):
        panel.send_button.click()
    assert card.problem.text() == "Type a result for get_weather first."
    card.answer.setPlainText("plain text is fine")
    with qtbot.waitSignal(panel.results_ready) as sent:
        panel.send_button.click()
    assert sent.args == [[("c1", "plain text is fine")]]


def test_edit_on_a_result_sends_a_new_version_of_it_with_the_other_results_of_that_reply(
    qtbot, modeldesk, fault_account, fault_server
):
    """Two calls in one reply, both answered; the first result edited: the model is asked again with
    the new result and the second one as it was, and the old version stays ("‹ 1/2 ›")."""
    from desktop_app.ui.chat.turn_actions import EDIT_RESULT_TITLE
    from tests.ui.test_turn_actions import click

    pane = modeldesk.chat_pane
    tab = pane.params.tools_tab
    assert pane.select_model(fault_account.id, "ok")
    tab.pasted.setPlainText(
        json.dumps([{"type": "function", "function": {"name": n, "parameters": WEATHER_SCHEMA}} for n in ("a", "b")])
    )
    tab.paste_button.click()
    _send(qtbot, pane, "Weather in Paris?")
    panel = pane.tool_calls
    assert len(panel.cards) == 2
    panel.cards[0].answer.setPlainText("sunny")
    panel.cards[1].answer.setPlainText("windy")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        panel.send_button.click()
    assert "Tool said: sunny Tool said: windy" in pane.transcript.toPlainText()
    [first_call, second_call] = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))[1].tool_calls

    click(pane, "turn:edit:2")  # the first result
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    assert box.editor.toPlainText() == "sunny"
    assert box.title.text() == EDIT_RESULT_TITLE.format(call=first_call.id)
    box.editor.setPlainText("snowing")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        box.send_button.click()
    assert blocker.args == ["complete"] and box.isHidden()

    last = _chat_bodies(fault_server)[-1]["messages"]
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in last[-2:]] == [
        ("tool", first_call.id, "snowing"),
        ("tool", second_call.id, "windy"),
    ]
    messages = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))
    assert [(m.role, m.content) for m in messages[2:4]] == [("tool", "snowing"), ("tool", "windy")]
    assert (messages[2].version, messages[2].versions) == (2, 2)
    assert "Tool said: snowing Tool said: windy" in pane.transcript.toPlainText()
    click(pane, "turn:previous:2")
    qtbot.waitUntil(lambda: "‹ 1/2 ›" in pane.transcript.toPlainText(), timeout=WAIT_MS)
    assert [m.content for m in run(qtbot, modeldesk.store.messages(pane.current_conversation.id))][2:4] == [
        "sunny",
        "windy",
    ]


def test_a_function_picked_in_the_tab_shows_its_description_from_the_start(qtbot):
    from desktop_app.ui.chat.tools_tab import ToolsTab

    tab = ToolsTab()
    qtbot.addWidget(tab)
    tab.resize(260, 500)
    tab.show()
    described = ToolSpec(name="get_weather", description="The current weather in a city, with its forecast. " * 3)
    tab.set_values((described,), "auto", True)
    tab.list.setCurrentRow(0)
    assert tab.description.text() == described.description and tab.description.cursorPosition() == 0
    assert tab.list.horizontalScrollBar().maximum() == 0  # the long line wraps, it does not scroll sideways
