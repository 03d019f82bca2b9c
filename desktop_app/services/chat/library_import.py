"""Conversations brought in from a file, always as new ones: ModelDesk JSON (checked against the
schema in desktop_app/resources) or OpenAI chat messages (a `messages` array, an object holding one,
or JSONL with one `{"messages": [...]}` per line).

The file is read, checked and turned into records on another thread; a file that cannot be imported
is refused in one sentence (`ImportRefused`) before anything is stored, and the records then go in
in one transaction, so an import is whole or absent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app.domain.attachments import Attachment, AttachmentKind
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.library import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_IMPORT_BYTES,
    SCHEMA_FILE,
    ImportRefused,
    ImportResult,
)
from desktop_app.domain.structured_output import json_path
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore

_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_TITLE_CHARS = 48  # as a new conversation is named from its first message


@dataclass(slots=True)
class Parsed:
    """What a file holds, checked: records as the store takes them, and attached files by digest."""

    records: list[dict[str, Any]]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


async def import_file(store: ConversationStore, attachments: AttachmentStore | None, path: Path) -> ImportResult:
    """Import every conversation in the file at `path` as new ones; ImportRefused (nothing imported)
    when the file cannot be, StorageFailed when the database cannot take them (nothing imported)."""
    parsed = await asyncio.to_thread(read_file, path)
    if parsed.files and attachments is not None:
        await attachments.keep_as_is(parsed.files)  # first: a message never names a file not kept
    added = await store.import_records(parsed.records)
    if parsed.files and attachments is not None:
        # Again, for a file a deletion elsewhere swept away meanwhile as unused (only missing ones are written).
        await attachments.keep_as_is(parsed.files)
    return ImportResult(tuple(i for i, _ in added), sum(n for _, n in added))


def read_file(path: Path) -> Parsed:
    name = path.name
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise _refused(
                "too_large",
                f"{name} is {size / 1_000_000:,.0f} MB; ModelDesk imports files up to "
                f"{MAX_IMPORT_BYTES // 1_000_000} MB, so export fewer conversations per file.",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise _refused("unreadable", f"{name} could not be read ({exc.strerror or type(exc).__name__}).") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused(
            "not_utf8", f"{name} is not UTF-8 text (byte {exc.start + 1} is not), so it is not JSON."
        ) from None
    return parse_text(text, name, is_jsonl=path.suffix.lower() == ".jsonl")


def parse_text(text: str, name: str, *, is_jsonl: bool = False) -> Parsed:
    if not text.strip():
        raise _refused("not_json", f"{name} is empty.")
    if not is_jsonl:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise _decode_error(exc, text, name) from None
        else:
            return _from_document(document, name)
    conversations = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and _cut_short(exc, line):
                raise _refused(
                    "truncated", f"{name} ends in the middle of line {number}: the file is cut short."
                ) from None
            raise _refused("not_json", f"Line {number} of {name} is not JSON ({exc.msg}).") from None
        if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
            raise _refused("wrong_shape", f"Line {number} of {name} is not an object with a “messages” list.")
        conversations.append(item["messages"])
    return _from_openai(conversations, name)


def _decode_error(exc: json.JSONDecodeError, text: str, name: str) -> ImportRefused:
    if _cut_short(exc, text):
        return _refused("truncated", f"{name} ends before its JSON does: the file is cut short.")
    return _refused("not_json", f"{name} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).")


def _cut_short(exc: json.JSONDecodeError, text: str) -> bool:
    """The JSON stops where the text does: more was to come (a string left open runs to the end)."""
    return exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")


def _from_document(document: Any, name: str) -> Parsed:
    if isinstance(document, dict) and "format" in document:
        return _from_modeldesk(document, name)
    if isinstance(document, dict) and isinstance(document.get("messages"), list):
        return _from_openai([document["messages"]], name)
    if isinstance(document, list) and document and all(isinstance(m, dict) and "role" in m for m in document):
        return _from_openai([document], name)
    if isinstance(document, list) and document and all(isinstance(m, dict) and "messages" in m for m in document):
        return _from_openai([item["messages"] for item in document], name)
    raise _refused(
        "wrong_shape",
        f"{name} is neither a ModelDesk export nor OpenAI chat messages (a “messages” list of role and content).",
    )


# --- ModelDesk JSON --------------------------------------------------------------------------------


@cache
def schema() -> dict[str, Any]:
    """The ModelDesk JSON schema shipped with the app."""
    return json.loads((resources.files("desktop_app") / "resources" / SCHEMA_FILE).read_text("utf-8"))


@cache
def _validator() -> Any:
    """A validator of the schema with its `$ref`s written out: jsonschema then checks a message in
    about half the time (it resolves no reference per item)."""
    from jsonschema import validators

    definitions = schema()["$defs"]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {k: inline(v) for k, v in node.items() if k != "$defs"}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return validators.validator_for(schema())(inline(schema()))


def _from_modeldesk(document: dict[str, Any], name: str) -> Parsed:
    from jsonschema import exceptions

    if document.get("format") != FORMAT_NAME:
        raise _refused("wrong_shape", f"{name} is not a ModelDesk export (its format is {document.get('format')!r}).")
    version = document.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise _refused(
            "newer_version",
            f"{name} was written by a newer ModelDesk (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}), so update ModelDesk to import it.",
        )
    problem = exceptions.best_match(_validator().iter_errors(document))
    if problem is not None:
        raise _shape(name, f"at {json_path(problem.absolute_path)}, {problem.message[:200]}")
    files: dict[str, tuple[str, bytes]] = {}
    for digest, item in document["files"].items():
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise _shape(name, f"the attached file {item['name']} is not base64") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise _shape(name, f"the attached file {item['name']} is damaged (its bytes do not match its digest)")
        files[digest] = (item["media_type"], data)
    records = [_checked_record(record, name) for record in document["conversations"]]
    return Parsed(records, files)


def _checked_record(record: dict[str, Any], name: str) -> dict[str, Any]:
    """The record with what the schema cannot say checked: a parent before its message, the leaf
    among them, parameters and the comparison this build accepts."""
    where = f"conversation {record['id']} ({record['title'][:40]})"
    try:
        params = ChatParams.model_validate(record["params"]).model_dump(mode="json")
        compare = record["compare"] and CompareSetup.model_validate(record["compare"]).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _shape(name, f"{where} has a setting ModelDesk cannot use ({first['msg']})") from None
    seen: set[int] = set()
    messages = []
    last = 0
    for m in record["messages"]:
        if m["id"] <= last:
            raise _shape(name, f"{where} has messages out of order (message {m['id']} after {last})")
        last = m["id"]
        if m["parent"] is not None and m["parent"] not in seen:
            raise _shape(name, f"{where} has message {m['id']} following message {m['parent']}, which is not before it")
        seen.add(m["id"])
        attachments = [Attachment.from_json(a).to_json() for a in m["attachments"]]
        messages.append({**m, "attachments": attachments})
    if record["leaf"] not in (None, 0) and record["leaf"] not in seen:
        raise _shape(name, f"{where} shows message {record['leaf']}, which it does not have")
    return {**record, "params": params, "compare": compare or None, "messages": messages}


# --- OpenAI chat messages --------------------------------------------------------------------------


def _from_openai(conversations: list[list[Any]], name: str) -> Parsed:
    parsed = Parsed([])
    now = time.time()
    for number, messages in enumerate(conversations, 1):
        where = f"conversation {number} of {name}" if len(conversations) > 1 else name
        # The file's first conversation is the most recently active: it tops the list.
        stamp = now - number * 1e-3
        parsed.records.append(_openai_record(messages, where, stamp, parsed.files))
    return parsed


def _openai_record(
    messages: list[Any], where: str, stamp: float, files: dict[str, tuple[str, bytes]]
) -> dict[str, Any]:
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for position, m in enumerate(messages, 1):
        role = _OPENAI_ROLES.get(str(m.get("role"))) if isinstance(m, dict) else None
        if role is None:
            raise _shape(where, f"message {position} has no role ModelDesk knows (system, user, assistant or tool)")
        text, attachments = _content(m.get("content"), f"message {position} of {where}", files)
        if role == "system" and not out:
            system.append(text)  # the leading system messages are the conversation's system prompt
            continue
        calls = []
        for call in m.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise _shape(where, f"message {position} has a tool call without a function name")
            arguments = function.get("arguments", "")
            arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            calls.append({"id": str(call.get("id", "")), "name": function["name"], "arguments": arguments})
        out.append(
            {
                "id": len(out) + 1,
                "parent": len(out) or None,
                "role": role,
                "content": text,
                "reasoning": str(m.get("reasoning_content") or ""),
                "status": "complete",
                "error": "",
                "account_id": "",
                "model": "",
                "created_at": stamp,
                "lane": 0,
                "vote": 0,
                "metrics": {},
                "request": None,
                "attachments": attachments,
                "tool_calls": calls,
                "tool_call_id": str(m.get("tool_call_id") or ""),
            }
        )
    if not out and not system:
        raise _shape(where, "it has no messages")
    first_user = next((m["content"] for m in out if m["role"] == "user" and m["content"].strip()), "")
    return {
        "id": 0,
        "title": " ".join(first_user.split())[:_TITLE_CHARS] or "Imported conversation",
        "account_id": "",
        "model": "",
        "params": ChatParams(system_prompt="\n\n".join(system)).model_dump(mode="json"),
        "compare": None,
        "created_at": stamp,
        "updated_at": stamp,
        "leaf": None,
        "messages": out,
    }


def _content(content: Any, where: str, files: dict[str, tuple[str, bytes]]) -> tuple[str, list[dict[str, Any]]]:
    """A message's text and the images it carries as data URLs (kept as attachments)."""
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise _shape(where, "its content is neither text nor a list of parts")
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            attachments.append(_image(str(part["image_url"].get("url", "")), len(attachments) + 1, where, files))
        else:
            raise _shape(where, f"it has a part ModelDesk cannot import ({kind or 'without a type'})")
    return "\n\n".join(texts), attachments


def _image(url: str, number: int, where: str, files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    header, _, payload = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64")):
        raise _shape(where, "its image is given by an address; only images inside the file (data URLs) are imported")
    try:
        data = base64.b64decode(payload, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise _shape(where, "its image cannot be read") from None
    media_type = header[len("data:") : -len(";base64")]
    digest = hashlib.sha256(data).hexdigest()
    files[digest] = (media_type, data)
    extension = media_type.split("/")[1]
    attachment = Attachment(
        digest, f"image {number}.{extension}", AttachmentKind.IMAGE, media_type, len(data), width, height
    )
    return attachment.to_json()


def _shape(name: str, detail: str) -> ImportRefused:
    return _refused("wrong_shape", f"{name} cannot be imported: {detail}.")


def _refused(cause: str, sentence: str) -> ImportRefused:
    return ImportRefused(sentence, "Nothing was imported.", cause)
