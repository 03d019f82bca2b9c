"""Presets on disk: saved, renamed and deleted atomically; a damaged file is set aside, not lost."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from desktop_app.domain.chat import ChatParams, ResponseFormat
from desktop_app.services.chat.presets import MAX_NAME_LENGTH, PresetStore

TERSE = ChatParams(
    system_prompt="Answer in one line.",
    temperature=0.2,
    top_k=20,
    thinking_budget=2048,
    response_format=ResponseFormat.JSON_SCHEMA,
    json_schema='{"type": "object"}',
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "presets.json"


async def reopened(path: Path) -> PresetStore:
    store = PresetStore(path)
    await store.load()
    return store


@pytest.mark.asyncio
async def test_a_saved_preset_is_there_after_a_restart_with_every_value(path: Path) -> None:
    store = await reopened(path)
    assert store.presets == []
    heard: list[None] = []
    store.on_changed(lambda: heard.append(None))
    await store.save("  Terse   answers ", TERSE.model_copy(update={"preset": "Other"}))

    assert heard == [None]
    again = await reopened(path)
    [preset] = again.presets
    assert preset.name == "Terse answers"  # spaces tidied
    assert preset.params == TERSE  # every value, and no preset name of its own
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.asyncio
async def test_saving_under_a_taken_name_replaces_that_preset(path: Path) -> None:
    store = await reopened(path)
    await store.save("Terse", TERSE)
    await store.save("Creative", ChatParams(temperature=1.2))
    await store.save("Terse", ChatParams(temperature=0.0))
    assert [p.name for p in store.presets] == ["Creative", "Terse"]
    assert store.find("Terse").params.temperature == 0.0


@pytest.mark.asyncio
async def test_rename_and_delete(path: Path) -> None:
    store = await reopened(path)
    await store.save("Terse", TERSE)
    await store.save("Creative", ChatParams(temperature=1.2))

    await store.rename("Terse", "Brief")
    with pytest.raises(ValueError, match=r"There is already a preset named “Creative”\."):
        await store.rename("Brief", "Creative")
    with pytest.raises(ValueError, match=r"There is no preset named “Terse” any more\."):
        await store.rename("Terse", "Other")
    await store.delete("Creative")

    again = await reopened(path)
    assert [(p.name, p.params) for p in again.presets] == [("Brief", TERSE)]


@pytest.mark.parametrize(("name", "sentence"), [("   ", "A preset needs a name."), ("x" * 81, "at most 80")])
@pytest.mark.asyncio
async def test_a_name_that_cannot_be_one_is_refused_in_one_sentence(path: Path, name: str, sentence: str) -> None:
    assert MAX_NAME_LENGTH == 80
    store = await reopened(path)
    with pytest.raises(ValueError, match=sentence):
        await store.save(name, TERSE)
    assert not path.exists()


@pytest.mark.asyncio
async def test_a_damaged_file_is_set_aside_and_named_in_the_log(path: Path, caplog) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"version": 1, "presets": [{"name": "Te')
    with caplog.at_level(logging.ERROR):
        store = await reopened(path)
    assert store.presets == []
    [kept] = path.parent.glob("presets.json.corrupt-*")
    assert kept.read_bytes().startswith(b'{"version": 1')  # the bytes are kept as they were
    assert str(kept) in caplog.text
    await store.save("Fresh", TERSE)  # and a new list starts
    assert [p.name for p in (await reopened(path)).presets] == ["Fresh"]


@pytest.mark.asyncio
async def test_a_preset_this_build_cannot_read_is_skipped_and_the_others_kept(path: Path, caplog) -> None:
    path.parent.mkdir(parents=True)
    entries = [
        {"name": "Good", "params": {"temperature": 0.4}},
        {"name": "Hot", "params": {"temperature": 9}},  # out of range
        {"params": {}},
    ]
    path.write_text(json.dumps({"version": 1, "presets": entries}))
    with caplog.at_level(logging.WARNING):
        store = await reopened(path)
    assert [p.name for p in store.presets] == ["Good"]
    assert caplog.text.count("was skipped") == 2


@pytest.mark.asyncio
async def test_a_save_the_disk_refuses_leaves_the_list_as_it_was(path: Path) -> None:
    store = await reopened(path)
    await store.save("Terse", TERSE)
    path.unlink()
    path.mkdir()  # a directory where the file goes: the rename over it fails, even for root
    with pytest.raises(IsADirectoryError):
        await store.save("Creative", ChatParams(temperature=1.2))
    assert [p.name for p in store.presets] == ["Terse"]
    assert not list(path.parent.glob(".presets.json.*"))  # no temporary file left behind
