"""Where files live, the settings schema, and how settings and window state reach the disk."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from datetime import datetime
from pathlib import Path

import platformdirs
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.settings import SCHEMA_VERSION, Settings
from desktop_app.services.paths import AppPaths, move_aside, write_atomically
from desktop_app.services.settings_store import SettingsStore, StateStore, _migrate

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


# --- AppPaths ------------------------------------------------------------------------------------


def test_modeldesk_home_relocates_every_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELDESK_HOME", str(tmp_path / "home"))

    paths = AppPaths.from_environment()

    home = tmp_path / "home"
    assert (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir) == (
        home / "config",
        home / "data",
        home / "cache",
        home / "log",
    )
    assert paths.settings_file == home / "config" / "settings.json"
    assert paths.state_file == home / "config" / "window-state.json"
    assert paths.database_file == home / "data" / "conversations.sqlite3"
    assert paths.model_cache_file == home / "cache" / "models.json"


def test_without_modeldesk_home_the_platform_directories_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELDESK_HOME", raising=False)

    paths = AppPaths.from_environment()

    assert paths.config_dir == platformdirs.user_config_path("ModelDesk", appauthor=False)
    assert paths.data_dir == platformdirs.user_data_path("ModelDesk", appauthor=False)
    assert paths.cache_dir == platformdirs.user_cache_path("ModelDesk", appauthor=False)
    assert paths.log_dir == platformdirs.user_log_path("ModelDesk", appauthor=False)


def test_ensure_creates_the_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELDESK_HOME", str(tmp_path / "home"))
    paths = AppPaths.from_environment()

    assert paths.ensure() is paths
    paths.ensure()  # twice is fine

    for directory in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert directory.is_dir()
        if sys.platform != "win32":
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700


# --- Settings (domain) ---------------------------------------------------------------------------


def _account(label: str = "Work", provider_id: str = "openai", **kwargs: object) -> Account:
    return Account(provider_id=provider_id, label=label, **kwargs)


def test_settings_defaults() -> None:
    settings = Settings()

    assert settings.schema_version == SCHEMA_VERSION == 1
    assert settings.accounts == []
    assert settings.last_conversation_id is None
    assert settings.theme == "system"
    assert settings.request_timeout_s == 60.0


def test_with_account_adds_then_replaces_by_id_and_leaves_the_original_alone() -> None:
    work = _account("Work")
    home = _account("Home", provider_id="ollama")
    empty = Settings()

    two = empty.with_account(work).with_account(home)
    renamed = two.with_account(work.model_copy(update={"label": "Office"}))

    assert empty.accounts == []
    assert [a.label for a in two.accounts] == ["Work", "Home"]
    assert [a.label for a in renamed.accounts] == ["Office", "Home"]
    assert renamed.account(work.id) is not None and renamed.account(work.id).label == "Office"
    assert renamed.account("nope") is None


def test_without_account_removes_only_that_account() -> None:
    work, home = _account("Work"), _account("Home", provider_id="ollama")
    settings = Settings().with_account(work).with_account(home)

    assert settings.without_account(work.id).accounts == [home]
    assert settings.without_account("nope").accounts == [work, home]


# --- SettingsStore -------------------------------------------------------------------------------


def test_a_missing_file_gives_the_defaults_without_a_notice(tmp_path: Path) -> None:
    settings, notice = SettingsStore(tmp_path / "settings.json").load()

    assert settings == Settings()
    assert notice is None
    assert list(tmp_path.iterdir()) == []


def test_saved_settings_load_back_unchanged(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    saved = Settings(
        accounts=[_account("Work"), _account("Local", provider_id="ollama", base_url="http://10.0.0.2:11434/")],
        last_conversation_id=42,
        theme="dark",
        request_timeout_s=12.5,
    )

    store.save(saved)
    loaded, notice = SettingsStore(tmp_path / "settings.json").load()

    assert notice is None
    assert loaded == saved
    assert json.loads((tmp_path / "settings.json").read_text("utf-8"))["schema_version"] == SCHEMA_VERSION


def test_saving_leaves_no_temporary_files_and_only_the_owner_can_read(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")

    for theme in ("light", "dark", "system"):
        store.save(Settings(theme=theme))

    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert store.load()[0].theme == "system"
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "settings.json").stat().st_mode) == 0o600


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    store.save(Settings(theme="dark"))
    before = (tmp_path / "settings.json").read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left on device"):
        store.save(Settings(theme="light"))
    monkeypatch.undo()

    assert (tmp_path / "settings.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b'{"theme": "dark",', "not valid JSON", id="truncated-json"),
        pytest.param(b"\x80\x81 garbage", "not UTF-8", id="binary"),
        pytest.param(b'["a", "list"]', "does not hold a settings object", id="not-an-object"),
        pytest.param(b'{"schema_version": 1, "theme": "purple"}', "theme", id="bad-value"),
        pytest.param(b'{"schema_version": 2, "theme": "dark"}', "newer version of ModelDesk", id="newer"),
        pytest.param(b'{"schema_version": 0}', "schema version 0", id="version-zero"),
    ],
)
def test_an_unreadable_file_is_moved_aside_with_a_notice(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)

    settings, notice = SettingsStore(path).load()

    assert settings == Settings()
    assert not path.exists()
    [moved] = list(tmp_path.iterdir())
    assert moved.name.startswith("settings.json.corrupt-")
    datetime.strptime(moved.name.removeprefix("settings.json.corrupt-"), "%Y%m%d-%H%M%S")
    assert moved.read_bytes() == content
    assert notice is not None
    assert notice.startswith("Your settings file could not be read (")
    assert reason in notice
    assert f"so it was moved to {moved} and ModelDesk started with default settings." in notice


def test_saving_after_a_move_aside_does_not_touch_the_moved_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b"not json")
    store = SettingsStore(path)
    store.load()

    store.save(Settings(theme="light"))

    moved = next(tmp_path.glob("settings.json.corrupt-*"))
    assert moved.read_bytes() == b"not json"
    assert store.load() == (Settings(theme="light"), None)


def test_move_aside_never_overwrites_an_earlier_copy(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    when = datetime(2024, 5, 1, 12, 30, 0)

    path.write_bytes(b"first")
    first = move_aside(path, now=when)
    path.write_bytes(b"second")
    second = move_aside(path, now=when)

    assert first.name == "settings.json.corrupt-20240501-123000"
    assert second.name == "settings.json.corrupt-20240501-123000-2"
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "theme": "dark", "added_later": {"x": 1}}))

    settings, notice = SettingsStore(path).load()

    assert notice is None
    assert settings.theme == "dark"
    assert path.exists()


def test_a_file_without_a_version_counts_as_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"theme": "light"}')

    settings, notice = SettingsStore(path).load()

    assert notice is None
    assert settings.theme == "light"
    assert settings.schema_version == 1


def test_migrate_stamps_the_current_version_and_refuses_unknown_ones() -> None:
    assert _migrate({"theme": "dark"}) == {"theme": "dark", "schema_version": SCHEMA_VERSION}
    with pytest.raises(ValueError, match="is not a number"):
        _migrate({"schema_version": "one"})
    with pytest.raises(ValueError, match="does not exist"):
        _migrate({"schema_version": -3})


@pytest.mark.asyncio
async def test_async_saves_land_in_the_order_they_were_asked_for(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")

    await asyncio.gather(*(store.save_async(Settings(last_conversation_id=n)) for n in range(20)))
    await store.close()

    assert store.load()[0].last_conversation_id == 19
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


@pytest.mark.asyncio
async def test_close_waits_for_a_queued_save(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")

    pending = asyncio.ensure_future(store.save_async(Settings(theme="dark")))
    await store.close()
    await pending

    assert SettingsStore(tmp_path / "settings.json").load()[0].theme == "dark"


# --- StateStore ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_window_state_round_trips(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "window-state.json")
    state = {"geometry": "AdnQywADAAA=", "splitter": [200, 800], "maximized": False}

    assert store.load() == {}
    store.save(state)
    assert StateStore(tmp_path / "window-state.json").load() == state

    await store.save_async({**state, "maximized": True})
    await store.close()
    assert store.load()["maximized"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["window-state.json"]


@pytest.mark.parametrize("content", [b"{oops", b"[1, 2]", b"\xff\xff"])
def test_unreadable_window_state_just_means_defaults(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "window-state.json"
    path.write_bytes(content)

    assert StateStore(path).load() == {}


@posix_only
def test_write_atomically_applies_the_requested_mode(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "file.json"

    write_atomically(target, b"{}", mode=0o600)

    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
