"""Import: the OpenAI chat format as new conversations, and every kind of bad file refused in one
sentence with nothing imported and nothing lost."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.library import MAX_IMPORT_BYTES, ImportRefused
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.library_export import export_json
from desktop_app.services.chat.library_import import import_file
from tests.unit import sqlite_stores
from tests.unit.library_samples import comparison, png, rich_conversation

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest.fixture
def attachments(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "data" / "attachments")


async def library_state(store: ConversationStore) -> list[tuple[str, int]]:
    return [(c.title, len(await store.messages(c.id))) for c in await store.list_conversations()]


# --- the OpenAI chat format ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_jsonl_file_becomes_one_conversation_per_line(
    store: ConversationStore, attachments: AttachmentStore, tmp_path: Path
) -> None:
    image = f"data:image/png;base64,{base64.b64encode(png((4, 3))).decode()}"
    lines = [
        {
            "messages": [
                {"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."},
                {"role": "user", "content": "Who wrote 'Romeo and Juliet'?"},
                {"role": "assistant", "content": "Oh, just some guy named William Shakespeare.", "weight": 1},
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in it?"},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "look", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_9", "content": "a red square"},
                {"role": "assistant", "content": "A red square."},
            ]
        },
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", "utf-8")

    result = await import_file(store, attachments, path)

    assert result.messages == 6
    first, second = [await store.get_conversation(i) for i in result.conversation_ids]
    assert first is not None and second is not None
    assert [c.id for c in await store.list_conversations()] == list(result.conversation_ids)  # the first on top
    assert first.title == "Who wrote 'Romeo and Juliet'?"
    assert first.params.system_prompt == "Marv is a factual chatbot that is also sarcastic."
    assert [(m.role, m.content) for m in await store.messages(first.id)] == [
        ("user", "Who wrote 'Romeo and Juliet'?"),
        ("assistant", "Oh, just some guy named William Shakespeare."),
    ]
    asked, called, answered, replied = await store.messages(second.id)
    assert asked.content == "What is in it?" and called.tool_calls[0].name == "look"
    assert (answered.role, answered.tool_call_id, replied.content) == ("tool", "call_9", "A red square.")
    [picture] = asked.attachments
    assert (picture.name, picture.media_type, picture.width, picture.height) == ("image 1.png", "image/png", 4, 3)
    assert await attachments.read(picture) == png((4, 3))


@pytest.mark.asyncio
async def test_a_messages_array_or_an_object_holding_one_is_one_conversation(
    store: ConversationStore, attachments: AttachmentStore, tmp_path: Path
) -> None:
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]
    (tmp_path / "array.json").write_text(json.dumps(messages), "utf-8")
    (tmp_path / "object.json").write_text(json.dumps({"model": "gpt-4o", "messages": messages}), "utf-8")

    one = await import_file(store, attachments, tmp_path / "array.json")
    two = await import_file(store, attachments, tmp_path / "object.json")

    assert (len(one.conversation_ids), len(two.conversation_ids)) == (1, 1)
    assert await library_state(store) == [("Hello", 2), ("Hello", 2)]


# --- bad input -------------------------------------------------------------------------------------


async def refused(store: ConversationStore, attachments: AttachmentStore, path: Path) -> ImportRefused:
    before = await library_state(store)
    content = path.read_bytes() if path.stat().st_size < 10_000_000 else None
    with pytest.raises(ImportRefused) as caught:
        await import_file(store, attachments, path)
    assert await library_state(store) == before  # nothing imported
    if content is not None:
        assert path.read_bytes() == content  # nothing lost
    message = str(caught.value)
    assert message.endswith(".") and message.count(". ") == 0, message  # one sentence
    assert caught.value.action == "Nothing was imported."
    return caught.value


@pytest_asyncio.fixture
async def exported(store: ConversationStore, attachments: AttachmentStore) -> bytes:
    ids = [await rich_conversation(store, attachments), await comparison(store)]
    return await export_json(store, attachments, ids)


@pytest.mark.asyncio
async def test_a_file_cut_short_is_refused(store, attachments, exported: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(exported[: len(exported) // 2])

    error = await refused(store, attachments, path)

    assert (error.kind, error.cause) == ("ImportRefused", "truncated")
    assert str(error) == "cut.json ends before its JSON does: the file is cut short."


@pytest.mark.asyncio
async def test_a_jsonl_file_cut_short_is_refused_whole(store, attachments, tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    whole = json.dumps({"messages": [{"role": "user", "content": "one"}]})
    path.write_text(f"{whole}\n{whole[:20]}", "utf-8")

    error = await refused(store, attachments, path)

    assert error.cause == "truncated" and str(error) == "cut.jsonl ends in the middle of line 2: the file is cut short."


@pytest.mark.asyncio
async def test_a_file_from_a_newer_modeldesk_is_refused(store, attachments, exported: bytes, tmp_path: Path) -> None:
    document = json.loads(exported)
    document["version"] = 2
    document["conversations"][0]["labels"] = ["a field this build does not know"]
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(document), "utf-8")

    error = await refused(store, attachments, path)

    assert error.cause == "newer_version"
    assert str(error) == (
        "newer.json was written by a newer ModelDesk (format version 2; this one reads up to 1), "
        "so update ModelDesk to import it."
    )


@pytest.mark.asyncio
async def test_a_file_over_the_cap_is_refused_before_it_is_read(store, attachments, tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as file:
        file.truncate(MAX_IMPORT_BYTES + 1)  # sparse: takes no room on disk, and reading it would take 200 MB

    error = await refused(store, attachments, path)

    assert error.cause == "too_large"
    assert (
        str(error)
        == "huge.json is 200 MB; ModelDesk imports files up to 200 MB, so export fewer conversations per file."
    )


@pytest.mark.asyncio
async def test_text_that_is_not_utf8_is_refused(store, attachments, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps([{"role": "user", "content": "crème brûlée"}], ensure_ascii=False).encode("latin-1"))

    error = await refused(store, attachments, path)

    assert error.cause == "not_utf8"
    assert str(error) == "latin1.json is not UTF-8 text (byte 33 is not), so it is not JSON."


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ('{"hello": "world"}', "shape.json is neither a ModelDesk export nor OpenAI chat messages"),
        (
            '{"format": "modeldesk-conversations", "version": 1, "conversations": [{"title": 3}], "files": {}}',
            "shape.json cannot be imported: at $.conversations[0], ",
        ),
        ('[{"role": "narrator", "content": "Once"}]', "shape.json cannot be imported: message 1 has no role"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}',
            "message 1 of shape.json cannot be imported: its image is given by an address; only images inside",
        ),
        ("{'single': 'quotes'}", "shape.json is not JSON (Expecting property name enclosed in double quotes at line 1"),
    ],
)
@pytest.mark.asyncio
async def test_json_of_the_wrong_shape_is_refused(store, attachments, tmp_path: Path, text: str, sentence: str) -> None:
    path = tmp_path / "shape.json"
    path.write_text(text, "utf-8")

    error = await refused(store, attachments, path)

    assert str(error).startswith(sentence), str(error)
    assert error.cause in ("wrong_shape", "not_json")


@pytest.mark.asyncio
async def test_an_export_with_a_broken_tree_or_a_damaged_file_is_refused(
    store, attachments, exported: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    document = json.loads(exported)
    document["conversations"][0]["messages"][2]["parent"] = 7
    path.write_text(json.dumps(document), "utf-8")
    error = await refused(store, attachments, path)
    assert str(error) == (
        "broken.json cannot be imported: conversation 1 (Trip plan ✈) has message 3 following message 7, "
        "which is not before it."
    )

    document = json.loads(exported)
    digest = next(iter(document["files"]))
    document["files"][digest]["data"] = base64.b64encode(b"other bytes").decode()
    path.write_text(json.dumps(document), "utf-8")
    error = await refused(store, attachments, path)
    assert "is damaged (its bytes do not match its digest)" in str(error)


@pytest.mark.asyncio
async def test_a_database_failure_half_way_leaves_nothing_imported(
    store: ConversationStore, attachments: AttachmentStore, db_path: Path, exported: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "two.json"
    path.write_bytes(exported)
    before = await library_state(store)
    # A real fault in the real database: the second conversation's third message cannot be written.
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse AFTER INSERT ON messages WHEN NEW.content = 'Day 1: the harbour.'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )

    with pytest.raises(StorageFailed):
        await import_file(store, attachments, path)

    assert await library_state(store) == before


@pytest.mark.asyncio
async def test_a_reply_still_arriving_in_the_file_comes_in_as_interrupted(
    store: ConversationStore, attachments: AttachmentStore, tmp_path: Path
) -> None:
    c = await store.create_conversation(title="Mid-reply")
    await store.add_message(c.id, role="user", content="Tell me more")
    await store.add_message(c.id, role="assistant", content="Well, first", status=MessageStatus.STREAMING)
    path = tmp_path / "mid.json"
    path.write_bytes(await export_json(store, attachments, [c.id]))

    [copy] = (await import_file(store, attachments, path)).conversation_ids

    assert [m.status for m in await store.messages(copy)] == [MessageStatus.COMPLETE, MessageStatus.INTERRUPTED]


@pytest.mark.asyncio
async def test_messages_out_of_order_are_refused(store, attachments, exported: bytes, tmp_path: Path) -> None:
    document = json.loads(exported)
    messages = document["conversations"][1]["messages"]
    messages[1]["id"], messages[2]["id"] = messages[2]["id"], messages[1]["id"]
    path = tmp_path / "shuffled.json"
    path.write_text(json.dumps(document), "utf-8")

    error = await refused(store, attachments, path)

    assert str(error) == (
        "shuffled.json cannot be imported: conversation 2 (Which is better) has messages out of order "
        "(message 2 after 3)."
    )
