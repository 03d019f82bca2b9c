"""Tool calling in Anthropic's shape, for "View as code": what LiteLLM turns OpenAI's tools,
tool_choice, parallel_tool_calls, assistant tool_calls and tool messages into."""

from __future__ import annotations

import json
from typing import Any

TOOL_PARAMS = frozenset({"tools", "tool_choice", "parallel_tool_calls"})


def anthropic_tool_params(params: dict[str, Any]) -> dict[str, Any]:
    """`tools` and `tool_choice` as the Messages API takes them ({} without tools)."""
    tools = params.get("tools")
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": []}
    for tool in tools:
        function = tool.get("function", {})
        spec: dict[str, Any] = {"name": function.get("name", ""), "type": "custom"}  # as LiteLLM writes it
        if function.get("description"):
            spec["description"] = function["description"]
        spec["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        out["tools"].append(spec)
    choice = params.get("tool_choice", "auto")
    if isinstance(choice, dict):
        anthropic_choice: dict[str, Any] = {"type": "tool", "name": choice.get("function", {}).get("name", "")}
    else:
        anthropic_choice = {"type": {"required": "any"}.get(choice, choice)}
    if params.get("parallel_tool_calls") is False:
        anthropic_choice["disable_parallel_tool_use"] = True
    if "tool_choice" in params or "parallel_tool_calls" in params:
        out["tool_choice"] = anthropic_choice
    return out


def anthropic_tool_message(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """An assistant message with calls (tool_use blocks after its text) or a tool message (a user
    message's tool_result block), as (role, blocks); None for any other message."""
    if message.get("role") == "tool":
        block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": message["content"]}
        return "user", [block]
    calls = message.get("tool_calls")
    if not calls:
        return None
    content = message.get("content")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if isinstance(content, str) and content else []
    for call in calls:
        function = call.get("function", {})
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {}
        blocks.append(
            {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": arguments}
        )
    return "assistant", blocks
