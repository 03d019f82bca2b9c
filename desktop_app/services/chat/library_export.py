"""Conversations written out: ModelDesk JSON (lossless, the schema in desktop_app/resources) or
Markdown (the branch shown, to read). The database is read on the store's worker; the file is built
and written on another thread, so a long history never holds up the event loop."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_app import __version__
from desktop_app.domain.attachments import Attachment, AttachmentRefused, fenced
from desktop_app.domain.conversations import Conversation, StoredMessage
from desktop_app.domain.library import FORMAT_NAME, FORMAT_VERSION, ExportFormat
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.paths import write_atomically


async def ordered_ids(store: ConversationStore, wanted: Sequence[int] | None) -> list[int]:
    """The conversations to export in the list's order (the most recently active first); all when
    `wanted` is None."""
    listed = [c.id for c in await store.list_conversations()]
    if wanted is None:
        return listed
    chosen = set(wanted)
    return [i for i in listed if i in chosen]


async def export_json(store: ConversationStore, attachments: AttachmentStore | None, ids: Sequence[int]) -> bytes:
    """The conversations as a ModelDesk JSON file: the same conversations always give the same bytes."""
    records = await store.export_records(ids)
    files: dict[str, dict[str, str]] = {}
    for record in records:
        for message in record["messages"]:
            for item in message["attachments"]:
                if item["digest"] in files or attachments is None:
                    continue
                attachment = Attachment.from_json(item)
                try:
                    data = await attachments.read(attachment)
                except AttachmentRefused:
                    continue  # gone from disk: the message still names it, as it does here
                files[attachment.digest] = {
                    "media_type": attachment.media_type,
                    "name": attachment.name,
                    "data": base64.b64encode(data).decode("ascii"),
                }
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "generator": f"ModelDesk {__version__}",
        "conversations": records,
        "files": files,
    }
    return await asyncio.to_thread(encode_json, document)


def encode_json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


async def export_markdown(store: ConversationStore, ids: Sequence[int]) -> str:
    parts = []
    for conversation_id in ids:
        conversation = await store.get_conversation(conversation_id)
        if conversation is None:
            continue
        lanes = [0, *(conversation.compare.lanes() if conversation.compare else ())]
        branches = {lane: await store.messages(conversation_id, lane=lane) for lane in lanes}
        parts.append(markdown(conversation, branches))
    return "\n---\n\n".join(parts)


async def write_export(
    store: ConversationStore,
    attachments: AttachmentStore | None,
    path: Path,
    fmt: ExportFormat,
    wanted: Sequence[int] | None = None,
) -> int:
    """Write the conversations (all when `wanted` is None) to `path`, replacing it whole or not at
    all; how many were written. OSError when the file cannot be written."""
    ids = await ordered_ids(store, wanted)
    if fmt is ExportFormat.JSON:
        data = await export_json(store, attachments, ids)
    else:
        data = (await export_markdown(store, ids)).encode("utf-8")
    await asyncio.to_thread(write_atomically, path, data, mode=0o644)
    return len(ids)


# --- Markdown --------------------------------------------------------------------------------------


def markdown(conversation: Conversation, branches: dict[int, list[StoredMessage]]) -> str:
    """The branch shown as Markdown; a comparison's columns each under its shared turn. `branches`:
    the path of each lane (0, and each column's)."""
    lines = [f"# {conversation.title}", ""]
    if conversation.compare:
        for lane, column in zip(conversation.compare.lanes(), conversation.compare.columns, strict=True):
            lines.append(f"- Column {lane}: {column.model or 'no model'}")
    else:
        lines.append(f"- Model: {conversation.model or 'none chosen'}")
    if conversation.params.preset:
        lines.append(f"- Preset: {conversation.params.preset}")
    lines.append("")
    if conversation.params.system_prompt:
        lines += ["## System prompt", "", conversation.params.system_prompt, ""]
    shared = {m.id: m for path in branches.values() for m in path if m.lane == 0}
    columns: dict[tuple[int | None, int], list[StoredMessage]] = {}
    for lane, path in branches.items():
        turn = None
        for m in path:
            if m.lane == 0:
                turn = m.id
            elif m.lane == lane:
                columns.setdefault((turn, lane), []).append(m)
    for turn in [None, *sorted(shared)]:
        if turn is not None:
            lines += _message(shared[turn], "##")
        for lane in sorted(branches):
            if (turn, lane) in columns:
                lines += [f"### Column {lane}", ""]
                for m in columns[(turn, lane)]:
                    lines += _message(m, "####")
    return "\n".join(lines).rstrip() + "\n"


def _message(m: StoredMessage, level: str) -> list[str]:
    heading = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "system": "System"}.get(m.role, m.role)
    if m.role == "assistant" and m.model:
        heading += f" ({m.model})"
    if m.role == "tool" and m.tool_call_id:
        heading += f" for {m.tool_call_id}"
    lines = [f"{level} {heading}", ""]
    if m.reasoning:
        lines += ["<details><summary>Reasoning</summary>", "", m.reasoning, "", "</details>", ""]
    if m.content:
        lines += [m.content, ""]
    if m.status.value not in ("complete", "streaming"):
        lines += [f"*{m.status.value.capitalize()}{': ' + m.error if m.error else ''}*", ""]
    for a in m.attachments:
        lines.append(f"- Attached: {a.name} ({a.media_type}, {a.size:,} bytes)")
    if m.attachments:
        lines.append("")
    for call in m.tool_calls:
        try:
            arguments: Any = json.loads(call.arguments)
        except ValueError:
            arguments = call.arguments
        text = json.dumps({"id": call.id, "name": call.name, "arguments": arguments}, ensure_ascii=False, indent=2)
        block = fenced("Tool call", text).split("\n", 1)[1]  # the fence alone, without the name line
        fence = block.split("\n", 1)[0]
        lines += [f"{fence}json{block[len(fence) :]}", ""]
    if summary := m.metrics.summary():
        lines += [f"*{summary}*", ""]
    return lines
