"""Checking a reply asked for as JSON: it parses (JSON object mode) and matches the schema sent.

Also checks the schema itself before anything is sent. `jsonschema` is imported on first use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCED = re.compile(r"\A\s*```[A-Za-z0-9_-]*\s*\n(.*)\n\s*```\s*\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    message: str  # "Valid JSON, matches the schema." or the first problem, with its path


def json_path(parts: Any) -> str:
    """`$.items[0].name` for the path parts jsonschema gives."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a JSON Schema a model can be held to, in one sentence, or None."""
    from jsonschema import exceptions, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        return f"The JSON schema is not a valid schema: {exc.message} (at {json_path(exc.path)})."
    return None


def _as_json(text: str) -> tuple[Any, str | None]:
    """The reply's JSON (a single fenced block is read inside its fence), or why it is not JSON."""
    match = _FENCED.match(text)
    body = match.group(1) if match else text
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."


def check_json_object(text: str) -> Verdict:
    value, problem = _as_json(text)
    if problem is not None:
        return Verdict(False, problem)
    if not isinstance(value, dict):
        return Verdict(False, f"Valid JSON, but a {type(value).__name__.replace('dict', 'object')}, not an object.")
    return Verdict(True, "Valid JSON object.")


def check_against_schema(text: str, schema: dict[str, Any]) -> Verdict:
    value, problem = _as_json(text)
    if problem is not None:
        return Verdict(False, problem)
    from jsonschema import exceptions, validators

    validator = validators.validator_for(schema)(schema)
    error = exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return Verdict(True, "Valid JSON, matches the schema.")
    return Verdict(False, f"Does not match the schema at {json_path(error.absolute_path)}: {error.message}.")


def pretty_json(text: str) -> str | None:
    """The reply's JSON indented by two spaces, or None when it does not parse."""
    value, problem = _as_json(text)
    return None if problem is not None else json.dumps(value, indent=2, ensure_ascii=False)


def reply_verdict(response_format: Any, text: str) -> Verdict | None:
    """The check a reply gets for the `response_format` sent with it (None: it asked for no JSON)."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return check_json_object(text)
    schema = (
        (response_format.get("json_schema") or {}).get("schema")
        if response_format.get("type") == "json_schema"
        else None
    )
    return check_against_schema(text, schema) if isinstance(schema, dict) else None
