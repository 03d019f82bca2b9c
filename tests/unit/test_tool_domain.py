"""Tool definitions, their checks and the request options they become (no I/O)."""

from __future__ import annotations

import json

import pytest

from desktop_app.domain.chat import ChatMessage, ChatParams
from desktop_app.domain.tools import (
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    ToolSpec,
    check_arguments,
    parse_tools,
    result_problem,
    tool_spec,
)
from desktop_app.services.chat import preflight

WEATHER = ToolSpec(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}},
        "required": ["city"],
    },
)


def test_a_pasted_openai_tools_array_becomes_the_functions() -> None:
    pasted = json.dumps([WEATHER.as_openai(), {"type": "function", "function": {"name": "now"}}])
    assert parse_tools(pasted) == (WEATHER, ToolSpec(name="now"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[{", "The tools are not valid JSON"),
        ('[{"type": "function"}]', "Tool 1 is not a function with a name."),
        ('[{"function": {"name": "has space"}}]', "“has space” cannot be a function name"),
        ('[{"function": {"name": "f", "parameters": {"type": 5}}}]', "f: The JSON schema is not a valid schema"),
        ('[{"function": {"name": "f"}}, {"function": {"name": "f"}}]', "Two tools have the same name."),
    ],
)
def test_bad_tools_are_refused_in_one_sentence(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(")):
        parse_tools(text)


def test_arguments_are_checked_against_the_schema_with_the_path_of_the_first_error() -> None:
    good = check_arguments(ToolCall("c1", "get_weather", '{"city": "Oslo"}'), (WEATHER,))
    assert good.valid and good.pretty == '{\n  "city": "Oslo"\n}'
    wrong = check_arguments(ToolCall("c1", "get_weather", '{"city": "Oslo", "days": [1, "x"]}'), (WEATHER,))
    assert not wrong.valid and wrong.message == "'x' is not of type 'integer' (at $.days[1])"
    missing = check_arguments(ToolCall("c1", "get_weather", "{}"), (WEATHER,))
    assert missing.message == "'city' is a required property (at $)"
    broken = check_arguments(ToolCall("c1", "get_weather", '{"city": '), (WEATHER,))
    assert not broken.valid and broken.message.startswith("The arguments are not valid JSON")
    unknown = check_arguments(ToolCall("c1", "nope", "{}"), (WEATHER,))
    assert unknown.message == "nope is not one of the tools offered."


def test_a_result_chosen_as_json_must_parse() -> None:
    assert result_problem("not json", as_json=False) is None
    assert result_problem('{"ok": true}', as_json=True) is None
    problem = result_problem("{ok: true}", as_json=True)
    assert problem is not None and problem.startswith("The result is not valid JSON") and problem.endswith(".")


def test_streamed_pieces_are_joined_by_index() -> None:
    joined = ToolCallAssembler()
    for delta in (
        ToolCallDelta(0, "a", "get_weather"),
        ToolCallDelta(1, "b", "now"),
        ToolCallDelta(0, arguments='{"city"'),
        ToolCallDelta(0, arguments=': "Rome"}'),
    ):
        joined.add(delta)
    assert joined.calls() == (ToolCall("a", "get_weather", '{"city": "Rome"}'), ToolCall("b", "now", ""))


def test_the_options_sent_for_tools() -> None:
    assert "tools" not in ChatParams().request_options()
    options = ChatParams(tools=(WEATHER,), tool_choice="required", parallel_tool_calls=False).request_options()
    assert options == {"tools": [WEATHER.as_openai()], "tool_choice": "required", "parallel_tool_calls": False}
    forced = ChatParams(tools=(WEATHER,), tool_choice="get_weather").request_options()
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    # A choice naming a function no longer offered is refused before anything is sent.
    problem = preflight.params_refusal(ChatParams(tools=(WEATHER,), tool_choice="gone"))
    assert problem is not None and "gone" in problem.message


def test_tools_survive_a_preset_round_trip() -> None:
    params = ChatParams(tools=(WEATHER, tool_spec("now", "", None)), tool_choice="now", parallel_tool_calls=False)
    assert ChatParams.model_validate_json(params.model_dump_json()) == params


def test_history_messages_in_openai_shape() -> None:
    call = ToolCall("c1", "now", "{}")
    assert ChatMessage("assistant", "", tool_calls=(call,)).as_dict() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call.as_openai()],
    }
    assert ChatMessage("tool", "12:00", tool_call_id="c1").as_dict() == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "12:00",
    }
