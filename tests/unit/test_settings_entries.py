"""One account or pool this version cannot read costs only that entry: the rest loads, the entry is
written back untouched, and the notice says which one was skipped and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.services.accounts import header_secrets
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore

FROM_A_NEWER_VERSION = {
    "id": "future1",
    "provider_id": "quantum_llm",
    "label": "Tomorrow",
    "base_url": "https://q.example/v1",
    "teleport": {"enabled": True},
}
BROKEN_POOL = {"id": "pool:broken", "label": "  ", "provider_id": "anthropic", "account_ids": ["a1"]}


def write(path: Path, **extra) -> dict:
    data = {
        "schema_version": 1,
        "theme": "dark",
        "accounts": [
            {"id": "a1", "provider_id": "anthropic", "label": "Work"},
            FROM_A_NEWER_VERSION,
            {"id": "a2", "provider_id": "openai", "label": "Personal"},
        ],
        "pools": [{"id": "pool:ok", "label": "Claude", "provider_id": "anthropic", "account_ids": ["a1"]}, BROKEN_POOL],
        "added_later": {"x": 1},
        **extra,
    }
    path.write_text(json.dumps(data))
    return data


def test_an_account_from_a_newer_version_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path)

    settings, notice = SettingsStore(path).load()

    assert [a.label for a in settings.accounts] == ["Work", "Personal"]
    assert [p.label for p in settings.pools] == ["Claude"]
    assert settings.theme == "dark"
    assert notice == (
        "Account “Tomorrow” in your settings file was not loaded (provider_id: unknown provider 'quantum_llm'); "
        "it is kept in the file unchanged. Pool number 2 in your settings file was not "
        "loaded (label: a pool needs a name); it is kept in the file unchanged."
    )
    assert path.exists() and not list(tmp_path.glob("settings.json.corrupt-*"))  # nothing set aside


def test_skipped_entries_and_unknown_keys_are_written_back_untouched(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path)
    store = SettingsStore(path)
    settings, _ = store.load()

    settings = settings.with_account(Account(id="a3", provider_id="mistral", label="New")).without_account("a2")
    store.save(settings.model_copy(update={"theme": "light"}))

    data = json.loads(path.read_text("utf-8"))
    assert FROM_A_NEWER_VERSION in data["accounts"] and BROKEN_POOL in data["pools"]
    assert [a["id"] for a in data["accounts"]] == ["a1", "a3", "future1"]
    assert data["added_later"] == {"x": 1} and data["theme"] == "light"
    # ...and loading again gives the same settings and the same notice.
    again, notice = SettingsStore(path).load()
    assert again == settings.model_copy(update={"theme": "light"})
    assert notice is not None and "Account “Tomorrow”" in notice


@pytest.mark.asyncio
async def test_credential_headers_in_an_older_file_move_to_the_keyring(tmp_path: Path, secrets, catalog) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "accounts": [
                    {
                        "id": "g1",
                        "provider_id": "openai_compatible",
                        "label": "Gateway",
                        "base_url": "http://127.0.0.1:9/v1",
                        "extra_headers": {"X-Title": "ModelDesk", "Cookie": "session=s3cret"},
                    }
                ],
            }
        )
    )
    store = SettingsStore(path)
    settings, notice = store.load()
    assert notice is None
    (account,) = settings.accounts
    assert account.extra_headers == {"X-Title": "ModelDesk"} and account.secret_headers == ("Cookie",)

    service = AccountService(settings=SettingsService(store=store, settings=settings), secrets=secrets, catalog=catalog)
    await service.adopt_header_secrets(store.found_header_secrets)

    assert "s3cret" not in path.read_text("utf-8")
    assert await header_secrets.read(secrets, "g1") == {"Cookie": "session=s3cret"}
    assert (await service.resolved(account)).request_headers["Cookie"] == "session=s3cret"


def test_a_pool_may_name_an_account_that_was_skipped(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(
        path,
        pools=[{"id": "pool:mixed", "label": "Mixed", "provider_id": "anthropic", "account_ids": ["a1", "future1"]}],
    )
    settings, _ = SettingsStore(path).load()
    assert settings.pools == [
        Pool(id="pool:mixed", label="Mixed", provider_id="anthropic", account_ids=("a1", "future1"))
    ]


def test_headers_save_now_refuses_cost_only_themselves_and_are_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "accounts": [
                    {
                        "id": "h1",
                        "provider_id": "openai_compatible",
                        "label": "Gateway",
                        "extra_headers": {"X-Title": "Café", "Transfer-Encoding": "chunked", "X-Team": "blue"},
                    }
                ],
            }
        )
    )

    settings, notice = SettingsStore(path).load()

    (account,) = settings.accounts
    assert account.extra_headers == {"X-Team": "blue"}
    assert notice is not None and notice.startswith(
        "Account “Gateway” was loaded without its header “X-Title: Café” (the value of X-Title must be plain ASCII"
    )
    assert "its header “Transfer-Encoding: chunked” (the Transfer-Encoding header is set by the HTTP client" in notice
    assert notice.endswith("type them again if needed.")


def test_routes_round_trip_and_a_broken_one_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    good = {
        "id": "route:fast",
        "label": "fast",
        "targets": [{"target_id": "a1", "model": "claude-haiku-4-5"}, {"target_id": "pool:ok", "model": "m"}],
    }
    broken = {"id": "route:bad", "label": "bad", "targets": [{"target_id": "", "model": "m"}]}
    write(path, routes=[good, broken])

    settings, notice = SettingsStore(path).load()

    [route] = settings.routes
    assert [(t.target_id, t.model) for t in route.targets] == [("a1", "claude-haiku-4-5"), ("pool:ok", "m")]
    assert "Route “bad” in your settings file was not loaded" in (notice or "")
    store = SettingsStore(path)
    settings, _ = store.load()
    store.save(settings.without_pool("pool:ok"))  # a removed pool leaves the routes that used it
    written = json.loads(path.read_text())
    assert written["routes"] == [{**good, "targets": good["targets"][:1]}, broken]
    reloaded, _ = SettingsStore(path).load()
    assert reloaded.without_account("a1").routes[0].targets == ()
