"""Tool calling: the functions offered to a model, the calls it makes, and the user's answers.

Everything is in OpenAI's shape (`tools`, assistant `tool_calls`, `tool` messages); LiteLLM turns
it into other providers' (Anthropic's tool_use / tool_result blocks).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.structured_output import json_path, schema_problem

# tool_choice values besides the name of one function.
TOOL_CHOICES = ("auto", "none", "required")
NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"  # what OpenAI and Anthropic both take as a function name


class ToolSpec(BaseModel):
    """One function the model may call; `parameters` is its JSON Schema."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("parameters")
    @classmethod
    def _a_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if (problem := schema_problem(value)) is not None:
            raise ValueError(problem)
        return value

    def as_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


def parse_tools(text: str) -> tuple[ToolSpec, ...]:
    """The functions of a pasted OpenAI `tools` array (or one tool); ValueError with one sentence."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"The tools are not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    items = data if isinstance(data, list) else [data]
    specs: list[ToolSpec] = []
    for position, item in enumerate(items):
        function = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"Tool {position + 1} is not a function with a name.")
        specs.append(tool_spec(function.get("name", ""), function.get("description", ""), function.get("parameters")))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("Two tools have the same name.")
    return tuple(specs)


def tool_spec(name: str, description: str, parameters: Any) -> ToolSpec:
    """A ToolSpec from a form or a pasted tool; ValueError with one sentence when it cannot be one."""
    if not re.match(NAME_PATTERN, name or ""):
        raise ValueError(f"“{name}” cannot be a function name: use 1-64 letters, digits, _ or -.")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise ValueError(f"The parameters of {name} must be a JSON object (a JSON Schema).")
    if (problem := schema_problem(parameters)) is not None:
        raise ValueError(f"{name}: {problem}")
    return ToolSpec(name=name, description=str(description or ""), parameters=parameters)


def tool_choice_option(choice: str, tools: tuple[ToolSpec, ...]) -> str | dict[str, Any]:
    """The `tool_choice` sent for the user's choice; ValueError when it names no function offered."""
    if choice in TOOL_CHOICES:
        return choice
    if choice not in {t.name for t in tools}:
        raise ValueError(f"tool_choice names {choice}, which is not among the tools.")
    return {"type": "function", "function": {"name": choice}}


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text the model wrote (it may not parse)

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: Any) -> ToolCall:
        return cls(str(data["id"]), str(data["name"]), str(data.get("arguments", "")))


# --- Stream events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of call `index`: its id and name come first, then its arguments, piece by piece."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The calls the reply made, whole; sent just before Finished."""

    calls: tuple[ToolCall, ...]


class ToolCallAssembler:
    """Joins streamed ToolCallDelta pieces into calls, by index."""

    def __init__(self) -> None:
        self._parts: dict[int, list[str]] = {}  # index -> [id, name, arguments]

    def add(self, delta: ToolCallDelta) -> None:
        part = self._parts.setdefault(delta.index, ["", "", ""])
        part[0] = part[0] or delta.id
        part[1] = part[1] or delta.name
        part[2] += delta.arguments

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id_ or f"call_{index}", name, args) for index, (id_, name, args) in sorted(self._parts.items())
        )

    def __bool__(self) -> bool:
        return bool(self._parts)


# --- Checking calls and results ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArgumentsVerdict:
    valid: bool
    message: str  # "Arguments match the schema." or the first problem, with its JSON path
    pretty: str  # the arguments pretty-printed (as written when they do not parse)


def check_arguments(call: ToolCall, tools: tuple[ToolSpec, ...]) -> ArgumentsVerdict:
    """The call's arguments checked against its function's schema."""
    spec = next((t for t in tools if t.name == call.name), None)
    try:
        value = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return ArgumentsVerdict(False, f"The arguments are not valid JSON ({exc.msg}).", call.arguments)
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    if spec is None:
        return ArgumentsVerdict(False, f"{call.name} is not one of the tools offered.", pretty)
    from jsonschema import validators

    validator = validators.validator_for(spec.parameters)(spec.parameters)
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        return ArgumentsVerdict(False, f"{error.message} (at {json_path(error.absolute_path)})", pretty)
    return ArgumentsVerdict(True, "Arguments match the schema.", pretty)


def result_problem(text: str, *, as_json: bool) -> str | None:
    """Why a result the user typed cannot be sent (as JSON, when they chose JSON), or None."""
    if not as_json:
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"The result is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); fix it or send it as text."
    return None
