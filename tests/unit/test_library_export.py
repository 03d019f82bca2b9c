"""Export: ModelDesk JSON that matches its schema and comes back byte for byte, and Markdown to read."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio

from desktop_app.domain.library import ExportFormat
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.library_export import export_json, export_markdown, write_export
from desktop_app.services.chat.library_import import import_file, schema
from tests.unit import sqlite_stores
from tests.unit.library_samples import comparison, png, rich_conversation

REPO_ROOT = Path(__file__).resolve().parents[2]

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest.fixture
def attachments(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "data" / "attachments")


@pytest_asyncio.fixture
async def other(tmp_path: Path):
    """A second library: another database and attachments folder (another machine)."""
    store = ConversationStore(tmp_path / "other" / "conversations.sqlite3")
    await store.open()
    yield store, AttachmentStore(tmp_path / "other" / "attachments")
    await store.close()


def test_the_schema_file_is_a_valid_json_schema_and_the_readme_names_it() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert "desktop_app/resources/modeldesk-conversations.schema.json" in (REPO_ROOT / "README.md").read_text("utf-8")


@pytest.mark.asyncio
async def test_an_export_matches_the_schema_and_holds_every_branch_file_and_vote(
    store: ConversationStore, attachments: AttachmentStore
) -> None:
    chat = await rich_conversation(store, attachments)
    compared = await comparison(store)

    data = await export_json(store, attachments, [compared, chat])
    document = json.loads(data)

    jsonschema.validate(document, schema())
    first, second = document["conversations"]
    assert (first["id"], first["title"], second["id"], second["title"]) == (1, "Which is better", 2, "Trip plan ✈")
    assert first["compare"]["blind"] is True and [m["vote"] for m in first["messages"]] == [0, 0, 1]
    assert [m["lane"] for m in first["messages"]] == [0, 1, 2]
    messages = second["messages"]
    assert [m["id"] for m in messages] == [1, 2, 3, 4, 5, 6, 7]
    assert [m["parent"] for m in messages] == [None, 1, 2, 3, 1, 5, 6]  # two versions of the reply to 1
    assert second["leaf"] == 4 and second["params"]["preset"] == "Brief"
    assert messages[1]["tool_calls"] == [{"id": "call_1", "name": "weather", "arguments": '{"city": "Ærøskøbing"}'}]
    assert messages[1]["metrics"]["tokens_per_s"] == 41.5 and messages[1]["reasoning"] == "The user wants a plan."
    assert messages[6]["status"] == "failed" and messages[6]["error"] == "The server refused the key."
    # The request's run of earlier messages names them by their ids in the file.
    assert {"run": [1, 1], "count": 1, "check": messages[4]["request"]["messages"][1]["check"]} == (
        messages[4]["request"]["messages"][1]
    )
    picture, notes = messages[0]["attachments"]
    assert document["files"][picture["digest"]]["media_type"] == "image/png"
    assert document["files"][notes["digest"]] == {
        "media_type": "text/plain",
        "name": "notes.txt",
        "data": "w4Zyw7hza8O4YmluZywgMyBkYXlzCg==",
    }


@pytest.mark.asyncio
async def test_importing_an_export_and_exporting_it_again_gives_the_same_bytes(
    store: ConversationStore, attachments: AttachmentStore, other, tmp_path: Path
) -> None:
    ids = [await rich_conversation(store, attachments), await comparison(store)]
    await store.set_pinned(ids[1], True)  # pins and tags travel too
    await store.set_tags(ids[0], ["travel", "Family"])
    target = tmp_path / "out" / "library.json"
    assert await write_export(store, attachments, target, ExportFormat.JSON) == 2
    other_store, other_attachments = other

    result = await import_file(other_store, other_attachments, target)

    assert len(result.conversation_ids) == 2 and result.messages == 10
    again = await export_json(other_store, other_attachments, [c.id for c in await other_store.list_conversations()])
    assert again == target.read_bytes()
    assert again == await export_json(store, attachments, ids[::-1])  # the list's order: newest first
    listed = {c.title: c for c in await other_store.list_conversations()}
    assert listed["Which is better"].pinned and listed["Trip plan ✈"].tags == ("Family", "travel")
    # The request still resolves against the imported messages.
    [chat] = [c for c in await other_store.list_conversations() if c.title == "Trip plan ✈"]
    reply = (await other_store.messages(chat.id))[1]
    versions = await other_store.versions(reply.id)
    second = await other_store.get_message(versions[1])
    assert second is not None and second.request is not None and second.request.missing == 0
    assert [m["content"] for m in second.request.messages] == ["Be brief.", "Plan a trip"]
    picture = (await other_store.messages(chat.id))[0].attachments[0]
    assert await other_attachments.read(picture) == png()


@pytest.mark.asyncio
async def test_importing_into_the_same_library_adds_copies_and_changes_nothing_there(
    store: ConversationStore, attachments: AttachmentStore, tmp_path: Path
) -> None:
    chat = await rich_conversation(store, attachments)
    before = await export_json(store, attachments, [chat])
    target = tmp_path / "one.json"
    target.write_bytes(before)

    result = await import_file(store, attachments, target)
    await import_file(store, attachments, target)

    [copy] = result.conversation_ids
    assert copy != chat and len(await store.list_conversations()) == 3
    assert await export_json(store, attachments, [chat]) == before
    assert await export_json(store, attachments, [copy]) == before


@pytest.mark.asyncio
async def test_a_file_gone_from_the_attachments_folder_is_named_but_not_embedded(
    store: ConversationStore, attachments: AttachmentStore
) -> None:
    chat = await rich_conversation(store, attachments)
    picture = (await store.messages(chat))[0].attachments[0]
    attachments.path_of(picture).unlink()

    document = json.loads(await export_json(store, attachments, [chat]))

    assert picture.digest not in document["files"] and len(document["files"]) == 1
    assert document["conversations"][0]["messages"][0]["attachments"][0]["digest"] == picture.digest
    jsonschema.validate(document, schema())


@pytest.mark.asyncio
async def test_markdown_shows_the_branch_shown_with_roles_files_and_tool_calls(
    store: ConversationStore, attachments: AttachmentStore, tmp_path: Path
) -> None:
    chat = await rich_conversation(store, attachments)
    compared = await comparison(store)
    target = tmp_path / "chats.md"

    assert await write_export(store, attachments, target, ExportFormat.MARKDOWN, [chat, compared]) == 2

    text = target.read_text("utf-8")
    trip = text[text.index("# Trip plan ✈") :]
    assert trip.startswith(
        "# Trip plan ✈\n\n- Model: m-large\n- Preset: Brief\n\n## System prompt\n\nBe brief.\n\n## User\n\nPlan a trip\n\n"
        "- Attached: dot.png (image/png, "
    )
    assert "- Attached: notes.txt (text/plain, 22 bytes)" in trip
    assert (
        '```json\n{\n  "id": "call_1",\n  "name": "weather",\n  "arguments": {\n    "city": "Ærøskøbing"\n  }\n}\n```'
        in trip
    )
    assert '## Tool result for call_1\n\n{"sky": "clear"}' in trip
    assert "Day 1: the harbour." in trip and "A shorter plan." not in trip  # another branch
    assert "<details><summary>Reasoning</summary>\n\nThe user wants a plan." in trip
    assert "*TTFT 250 ms · 41.5 tok/s · 12 in / 30 out tokens" in trip
    compare = text[text.index("# Which is better") :]
    assert "- Column 1: x-1\n- Column 2: y-2" in compare
    assert compare.index("## User\n\nName a colour.") < compare.index("### Column 1\n\n#### Assistant (x-1)\n\nBlue.")
    assert compare.index("Blue.") < compare.index("### Column 2\n\n#### Assistant (y-2)\n\nGreen.")
    assert await export_markdown(store, []) == ""
