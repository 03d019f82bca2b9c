"""Replies asked for as JSON are checked locally; a schema that is not a schema is refused before sending."""

from __future__ import annotations

import pytest

from desktop_app.domain.chat import ChatParams, ResponseFormat, parse_json_schema
from desktop_app.domain.structured_output import Verdict, check_against_schema, check_json_object
from desktop_app.services.chat.preflight import params_refusal

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ('{"name": "Ada", "tags": ["x"]}', Verdict(True, "Valid JSON, matches the schema.")),
        ('```json\n{"name": "Ada"}\n```', Verdict(True, "Valid JSON, matches the schema.")),
        (
            '{"name": "Ada", "tags": ["x", 3]}',
            Verdict(False, "Does not match the schema at $.tags[1]: 3 is not of type 'string'."),
        ),
        ('{"tags": []}', Verdict(False, "Does not match the schema at $: 'name' is a required property.")),
        (
            '{"name": "Ada",}',
            Verdict(False, "Not valid JSON: Expecting property name enclosed in double quotes at line 1, column 16."),
        ),
    ],
)
def test_a_reply_is_checked_against_the_schema_with_the_first_error_and_its_path(reply: str, verdict: Verdict) -> None:
    assert check_against_schema(reply, PERSON) == verdict


def test_json_object_mode_checks_the_reply_parses_to_an_object() -> None:
    assert check_json_object('{"a": 1}') == Verdict(True, "Valid JSON object.")
    assert check_json_object("[1, 2]") == Verdict(False, "Valid JSON, but a list, not an object.")
    assert not check_json_object("Sure! Here it is: {").valid


@pytest.mark.parametrize(
    ("schema", "sentence"),
    [
        (
            '{"type": "objekt"}',
            "The JSON schema is not a valid schema: 'objekt' is not valid under any of the given schemas (at $.type).",
        ),
        (
            '{"type": "object", "required": "name"}',
            "The JSON schema is not a valid schema: 'name' is not of type 'array' (at $.required).",
        ),
        (
            '{"type": "object",',
            "The JSON schema is not valid JSON (Expecting property name enclosed in double quotes at line 1).",
        ),
    ],
)
def test_a_schema_that_is_not_a_schema_is_refused_before_anything_is_sent(schema: str, sentence: str) -> None:
    with pytest.raises(ValueError, match=r"^The JSON schema is not (a )?valid") as refused:
        parse_json_schema(schema)
    assert str(refused.value) == sentence
    params = ChatParams(response_format=ResponseFormat.JSON_SCHEMA, json_schema=schema)
    problem = params_refusal(params)
    assert problem is not None and problem.message == sentence
