"""The SettingsService: changes queued together all land, in memory and on disk, in order; listeners
are told and can stop listening; a change it refuses changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts.accounts import AccountService, EnvKey
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore


def on_disk(tmp_path: Path):
    settings, notice = SettingsStore(tmp_path / "settings.json").load()
    assert notice is None
    return settings


@pytest.mark.asyncio
async def test_two_updates_queued_together_both_land(settings: SettingsService, tmp_path: Path) -> None:
    await asyncio.gather(
        settings.update(theme="dark"), settings.update(gguf_folders=["/models"]), settings.update(request_timeout_s=5.0)
    )

    for seen in (settings.current, on_disk(tmp_path)):
        assert (seen.theme, seen.gguf_folders, seen.request_timeout_s) == ("dark", ["/models"], 5.0)


@pytest.mark.asyncio
async def test_the_file_holds_the_last_change_made(settings: SettingsService, tmp_path: Path) -> None:
    await asyncio.gather(*(settings.update(last_conversation_id=n) for n in range(1, 21)))

    assert settings.current.last_conversation_id == 20 == on_disk(tmp_path).last_conversation_id


@pytest.mark.asyncio
async def test_an_update_made_while_accounts_wait_on_the_keyring_is_kept(
    accounts: AccountService, settings: SettingsService, tmp_path: Path
) -> None:
    # The import waits on the keyring (a worker thread) between deciding on the accounts and
    # writing them; the theme is changed in that gap. Neither change may undo the other.
    keys = [
        EnvKey("openai", "OPENAI_API_KEY", "sk-one-1234567890"),
        EnvKey("anthropic", "ANTHROPIC_API_KEY", "sk-ant-two-1234567890"),
    ]
    created, _ = await asyncio.gather(accounts.import_env_keys(keys), settings.update(theme="dark"))

    for seen in (settings.current, on_disk(tmp_path)):
        assert seen.theme == "dark"
        assert [a.id for a in seen.accounts] == [a.id for a in created]
        assert seen.env_import_offered


@pytest.mark.asyncio
async def test_accounts_saved_together_are_all_kept(
    accounts: AccountService, settings: SettingsService, tmp_path: Path
) -> None:
    made = [Account(provider_id="openai", label=f"Key {n}") for n in range(5)]
    await asyncio.gather(
        *(accounts.save_account(a, f"sk-{n}-abcdefghijkl") for n, a in enumerate(made)),
        settings.update(local_ollama_added=True),
    )

    for seen in (settings.current, on_disk(tmp_path)):
        assert {a.id for a in seen.accounts} == {a.id for a in made}
        assert seen.local_ollama_added


@pytest.mark.asyncio
async def test_listeners_are_told_what_changed_until_they_unsubscribe(settings: SettingsService) -> None:
    told: list[tuple[str, frozenset[str]]] = []
    unsubscribe = settings.on_changed(lambda s, changed: told.append((s.theme, changed)))

    await settings.update(theme="light")
    await settings.update(theme="light")  # no change: told, with nothing changed
    unsubscribe()
    await settings.update(theme="dark")
    unsubscribe()  # a second call is harmless

    assert told == [("light", frozenset({"theme"})), ("light", frozenset())]


@pytest.mark.asyncio
async def test_a_refused_change_changes_nothing(settings: SettingsService, tmp_path: Path) -> None:
    await settings.update(theme="dark")
    with pytest.raises(TypeError, match="no colour"):
        await settings.update(colour="red", theme="light")
    with pytest.raises(ValueError, match="request_timeout_s"):
        await settings.update(request_timeout_s=0, theme="light")

    assert settings.current.theme == "dark" == on_disk(tmp_path).theme


@pytest.mark.asyncio
async def test_a_write_that_fails_keeps_the_change_and_still_tells_listeners(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.mkdir()  # a real fault: the file cannot be replaced
    store = SettingsStore(path)
    settings = SettingsService(store=store)
    told: list[frozenset[str]] = []
    settings.on_changed(lambda _s, changed: told.append(changed))
    try:
        with pytest.raises(OSError):  # noqa: PT011 (which OSError depends on the platform)
            await settings.update(theme="dark")
    finally:
        await store.close()

    assert settings.current.theme == "dark" and told == [frozenset({"theme"})]
