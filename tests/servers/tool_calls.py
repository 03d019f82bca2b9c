"""Tool calling for the loopback servers: checking `tools` and tool messages, and planning calls.

OpenAI (platform.openai.com/docs/guides/function-calling, /docs/api-reference/chat/create and
/docs/api-reference/chat-streaming): `tools` is a list of {type: "function", function: {name,
description?, parameters?, strict?}}; `tool_choice` is "none" | "auto" | "required" or {type:
"function", function: {name}} and needs `tools`; an assistant message's `tool_calls` are {id, type:
"function", function: {name, arguments: a JSON string}}, and each must be answered by a following
`tool` message {tool_call_id, content} before anything else. A streamed call comes as
`delta.tool_calls` pieces: the first has index, id, type and the name (arguments ""), the next
ones index and a piece of `function.arguments`; the choice ends with finish_reason "tool_calls".

Anthropic (docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use and
/en/docs/build-with-claude/streaming): `tools` is a list of {name, description?, input_schema
(type "object")}; `tool_choice` {type: auto|any|tool|none, name (tool only),
disable_parallel_tool_use?}. A `tool_use` block {id, name, input: object} in an assistant message
must be answered by a `tool_result` block {tool_use_id, content?, is_error?} in the very next user
message, where the tool_result blocks come first. Streamed, a tool_use block starts with
content_block_start {type: tool_use, id, name, input: {}} and its input arrives as
`input_json_delta` {partial_json} pieces; the message ends with stop_reason "tool_use".

The wording of the refusals is the providers', as seen in their 400 answers. Only the standard
library is imported.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OPENAI_CHOICES = ("none", "auto", "required")
ANTHROPIC_CHOICES = ("auto", "any", "tool", "none")


class ToolRefusal(Exception):
    """A 400 answer: the message and (OpenAI) the param it names."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


@dataclass(frozen=True)
class PlannedCall:
    id: str
    name: str
    arguments: str  # JSON text


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for each required property of an object schema, by its type (a string: "Paris")."""
    props = schema.get("properties") or {}
    examples = {"string": "Paris", "integer": 2, "number": 1.5, "boolean": True, "array": [], "object": {}}
    out: dict[str, Any] = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        out[name] = prop["enum"][0] if prop.get("enum") else examples.get(prop.get("type", "string"), "x")
    return out


def rounds_done(messages: list[dict[str, Any]], is_call: Any) -> int:
    """How many replies with tool calls came since the user's last own message."""
    count = 0
    for msg in reversed(messages):
        if is_call(msg):
            count += 1
        elif msg.get("role") == "user" and not _is_anthropic_results(msg):
            break
    return count


def _is_anthropic_results(msg: dict[str, Any]) -> bool:
    content = msg.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def plan_calls(
    tools: list[tuple[str, dict[str, Any]]], *, parallel: bool, rounds: int, done: int, prefix: str
) -> list[PlannedCall]:
    """The calls this reply makes: one per tool offered (only the first when not parallel), until
    `rounds` replies with calls have been made."""
    if not tools or done >= rounds:
        return []
    chosen = tools if parallel else tools[:1]
    return [
        PlannedCall(f"{prefix}{uuid.uuid4().hex[:20]}", name, json.dumps(example_arguments(schema)))
        for name, schema in chosen
    ]


def pieces(text: str, size: int = 7) -> list[str]:
    """`text` cut in pieces, as a model streams it."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# --- OpenAI ----------------------------------------------------------------------------------------


def check_openai(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tools offered ((name, parameters) in order); ToolRefusal for what OpenAI refuses."""
    tools = body.get("tools")
    offered: list[tuple[str, dict[str, Any]]] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise ToolRefusal("Invalid type for 'tools': expected an array of objects.", "tools")
        for i, tool in enumerate(tools):
            at = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise ToolRefusal(f"Invalid value for '{at}.type': expected 'function'.", f"{at}.type")
            function = tool.get("function")
            if not isinstance(function, dict) or "name" not in function:
                raise ToolRefusal(f"Missing required parameter: '{at}.function.name'.", f"{at}.function.name")
            if unknown := sorted(set(function) - {"name", "description", "parameters", "strict"}):
                raise ToolRefusal(f"Unrecognized request argument supplied: {unknown[0]}", f"{at}.function")
            if not isinstance(function["name"], str) or not NAME.match(function["name"]):
                raise ToolRefusal(
                    f"Invalid '{at}.function.name': string does not match pattern. Expected a string that matches"
                    " the pattern '^[a-zA-Z0-9_-]+$'.",
                    f"{at}.function.name",
                )
            params = function.get("parameters", {"type": "object", "properties": {}})
            if not isinstance(params, dict) or params.get("type", "object") != "object":
                raise ToolRefusal(
                    f"Invalid schema for function '{function['name']}': schema must be a JSON Schema of"
                    " 'type: \"object\"', got 'type: \"None\"'.",
                    f"{at}.function.parameters",
                )
            offered.append((function["name"], params))
        if not tools:
            raise ToolRefusal(
                "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array"
                " instead.",
                "tools",
            )
    choice = body.get("tool_choice")
    if choice is not None:
        if not offered:
            raise ToolRefusal(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            if choice.get("type") != "function" or name not in {n for n, _ in offered}:
                raise ToolRefusal(
                    f"Invalid value for 'tool_choice': function '{name}' is not among the tools.", "tool_choice"
                )
        elif choice not in OPENAI_CHOICES:
            raise ToolRefusal(
                f"Invalid value: {choice!r}. Supported values are: 'none', 'auto', and 'required'.", "tool_choice"
            )
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise ToolRefusal("Invalid type for 'parallel_tool_calls': expected a boolean.", "parallel_tool_calls")
    if parallel is not None and not offered:
        raise ToolRefusal(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are"
            " specified.",
            "parallel_tool_calls",
        )
    _check_openai_messages(body.get("messages") or [])
    return offered


def _check_openai_messages(messages: list[Any]) -> None:
    pending: list[str] = []  # calls of the last assistant message not answered yet
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str):
                raise ToolRefusal(
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.", f"messages[{i}].tool_call_id"
                )
            if call_id not in pending:
                raise ToolRefusal(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with"
                    " 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.remove(call_id)
            continue
        if pending:
            raise ToolRefusal(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each"
                f" 'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                "messages",
            )
        calls = msg.get("tool_calls")
        if calls is None:
            continue
        if role != "assistant" or not isinstance(calls, list) or not calls:
            raise ToolRefusal(f"Invalid value for 'messages[{i}].tool_calls'.", f"messages[{i}].tool_calls")
        for j, call in enumerate(calls):
            at = f"messages[{i}].tool_calls[{j}]"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(call.get("id"), str) or call.get("type") != "function" or not isinstance(function, dict):
                raise ToolRefusal(f"Missing required parameter: '{at}.id'.", at)
            if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
                raise ToolRefusal(f"Missing required parameter: '{at}.function.arguments'.", f"{at}.function")
            pending.append(call["id"])
    if pending:
        raise ToolRefusal(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each"
            f" 'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            "messages",
        )


def openai_plan(body: dict[str, Any], offered: list[tuple[str, dict[str, Any]]], rounds: int) -> list[PlannedCall]:
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return []
    if isinstance(choice, dict):
        offered = [t for t in offered if t[0] == choice["function"]["name"]]
    done = rounds_done(body["messages"], lambda m: m.get("role") == "assistant" and bool(m.get("tool_calls")))
    return plan_calls(offered, parallel=body.get("parallel_tool_calls", True), rounds=rounds, done=done, prefix="call_")


def openai_deltas(calls: list[PlannedCall]) -> list[dict[str, Any]]:
    """The `delta`s that stream the calls, as OpenAI sends them."""
    out: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        first = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        out.append({"tool_calls": [first]})
        out.extend({"tool_calls": [{"index": index, "function": {"arguments": p}}]} for p in pieces(call.arguments))
    return out


def openai_results(messages: list[dict[str, Any]]) -> list[str]:
    """The tool results sent after the last assistant message with calls."""
    out: list[str] = []
    for msg in reversed(messages):
        if msg.get("role") != "tool":
            break
        content = msg.get("content")
        out.append(content if isinstance(content, str) else json.dumps(content))
    return out[::-1]


# --- Anthropic -------------------------------------------------------------------------------------


def check_anthropic(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tools offered; ToolRefusal (with Anthropic's wording) for what its API refuses."""
    tools = body.get("tools")
    offered: list[tuple[str, dict[str, Any]]] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise ToolRefusal("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise ToolRefusal(f"tools.{i}: Input should be a valid dictionary")
            if unknown := sorted(set(tool) - {"name", "description", "input_schema", "cache_control", "type"}):
                raise ToolRefusal(f"tools.{i}.custom.{unknown[0]}: Extra inputs are not permitted")
            for name in ("name", "input_schema"):
                if name not in tool:
                    raise ToolRefusal(f"tools.{i}.custom.{name}: Field required")
            if not isinstance(tool["name"], str) or not NAME.match(tool["name"]):
                raise ToolRefusal(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            schema = tool["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise ToolRefusal(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            offered.append((tool["name"], schema))
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ANTHROPIC_CHOICES:
            raise ToolRefusal(
                "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any',"
                " 'tool', 'none'"
            )
        if choice["type"] == "tool" and choice.get("name") not in {n for n, _ in offered}:
            raise ToolRefusal(f"Tool '{choice.get('name')}' not found in tools")
        if not offered and choice["type"] != "none":
            raise ToolRefusal("tool_choice may only be specified while providing tools.")
    _check_anthropic_messages(body.get("messages") or [])
    return offered


def _check_anthropic_messages(messages: list[Any]) -> None:
    pending: list[str] = []  # tool_use ids of the previous assistant message
    for i, msg in enumerate(messages):
        content = msg.get("content") if isinstance(msg, dict) else None
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        results = [b for b in blocks if b.get("type") == "tool_result"]
        for j, block in enumerate(blocks):
            at = f"messages.{i}.content.{j}"
            if block.get("type") == "tool_use":
                if msg.get("role") != "assistant":
                    raise ToolRefusal(f"{at}: tool_use blocks can only be in assistant messages")
                for name, ok in (
                    ("id", isinstance(block.get("id"), str)),
                    ("name", isinstance(block.get("name"), str)),
                    ("input", isinstance(block.get("input"), dict)),
                ):
                    if not ok:
                        raise ToolRefusal(f"{at}.tool_use.{name}: Field required")
            if block.get("type") == "tool_result":
                if not isinstance(block.get("tool_use_id"), str):
                    raise ToolRefusal(f"{at}.tool_result.tool_use_id: Field required")
                inner = block.get("content", "")
                if not isinstance(inner, (str, list)):
                    raise ToolRefusal(f"{at}.tool_result.content: Input should be a valid string or a valid list")
        if pending:
            answered = [b["tool_use_id"] for b in results] if msg.get("role") == "user" else []
            missing = [p for p in pending if p not in answered]
            if missing:
                raise ToolRefusal(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after:"
                    f" {', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in"
                    " the next message."
                )
            if any(b.get("type") != "tool_result" for b in blocks[: len(results)]):
                raise ToolRefusal(
                    f"messages.{i}: tool_result blocks must come first in the user message content, before any text."
                )
        extra = [b["tool_use_id"] for b in results if b["tool_use_id"] not in pending]
        if extra:
            raise ToolRefusal(
                f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: {extra[0]}. Each"
                " `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"] if msg.get("role") == "assistant" else []
    if pending:
        raise ToolRefusal(
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks immediately"
            f" after: {', '.join(pending)}. Each `tool_use` block must have a corresponding `tool_result` block in"
            " the next message."
        )


def anthropic_plan(body: dict[str, Any], offered: list[tuple[str, dict[str, Any]]], rounds: int) -> list[PlannedCall]:
    choice = body.get("tool_choice") or {"type": "auto"}
    if choice["type"] == "none":
        return []
    if choice["type"] == "tool":
        offered = [t for t in offered if t[0] == choice["name"]]

    def is_call(msg: dict[str, Any]) -> bool:
        content = msg.get("content")
        return (
            msg.get("role") == "assistant"
            and isinstance(content, list)
            and any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
        )

    done = rounds_done(body["messages"], is_call)
    parallel = not choice.get("disable_parallel_tool_use", False)
    return plan_calls(offered, parallel=parallel, rounds=rounds, done=done, prefix="toolu_01")


def anthropic_results(messages: list[dict[str, Any]]) -> list[str]:
    """The tool results of the last user message."""
    content = messages[-1].get("content") if messages else None
    if not isinstance(content, list):
        return []
    out = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content", "")
            out.append(
                inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner if isinstance(b, dict))
            )
    return out


def anthropic_events(calls: list[PlannedCall], first_index: int) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs that stream the calls as tool_use blocks from `first_index` on."""
    out: list[tuple[str, dict[str, Any]]] = []
    for offset, call in enumerate(calls):
        index = first_index + offset
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        for piece in pieces(call.arguments):
            delta = {"type": "input_json_delta", "partial_json": piece}
            out.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out
