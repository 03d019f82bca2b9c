"""SecretStore against the real OS keyring: the default backend, no injection.

Needs a reachable Secret Service, e.g. `bash scripts/with-secret-service.sh <pytest command>`.
Without one these tests skip, or fail when MODELDESK_REQUIRE_SECRET_SERVICE=1 (CI sets it so a
broken keyring setup cannot pass as skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator

import keyring
import keyring.core
import keyring.errors
import pytest
from keyring.backends import SecretService, chainer

from desktop_app.services.accounts.secrets import SERVICE, SecretStore

pytestmark = pytest.mark.keyring

REQUIRE_ENV = "MODELDESK_REQUIRE_SECRET_SERVICE"
PROBE_TIMEOUT_S = 10.0
SECRET = f"sk-keyring-test-{uuid.uuid4().hex}"


def _secret_service_problem() -> str | None:
    """Why the Secret Service cannot be used here, or None when it can."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)"
    outcome: dict[str, str] = {}

    def check() -> None:
        try:
            SecretService.Keyring.priority  # noqa: B018 - raises unless the service answers
        except Exception as exc:  # noqa: BLE001 (whatever it raises, the service is not usable)
            outcome["problem"] = f"{type(exc).__name__}: {exc}"

    # A daemon thread: a hung D-Bus must neither hang this check nor the interpreter's exit.
    checker = threading.Thread(target=check, name="secret-service-check", daemon=True)
    checker.start()
    checker.join(PROBE_TIMEOUT_S)
    if checker.is_alive():
        return f"the Secret Service did not answer within {PROBE_TIMEOUT_S:g} s"
    return outcome.get("problem")


@pytest.fixture(scope="module")
def secret_service() -> None:
    problem = _secret_service_problem()
    if problem is None:
        return
    message = f"No reachable Secret Service: {problem}. Run under: bash scripts/with-secret-service.sh <command>"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def default_keyring(secret_service: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Detect keyring's default backend afresh, undoing any in-memory keyring set by a fixture."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    previous = keyring.get_keyring()
    keyring.core.init_backend()
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def account_id() -> Iterator[str]:
    """A fresh account id whose keyring entry is removed afterwards, whatever the test did."""
    account = f"modeldesk-test-{uuid.uuid4().hex[:12]}"
    yield account
    with contextlib.suppress(keyring.errors.PasswordDeleteError):
        SecretService.Keyring().delete_password(SERVICE, account)


async def _read_directly(account: str) -> str | None:
    """Read the entry with keyring itself, bypassing SecretStore and its memory."""
    return await asyncio.to_thread(SecretService.Keyring().get_password, SERVICE, account)


@pytest.mark.asyncio
async def test_default_backend_is_the_secret_service() -> None:
    store = SecretStore()
    try:
        await store.start()
        assert store.persistent, store.notice
        assert store.backend_name == "SecretService Keyring"
        assert store.notice is None
        # keyring picks a chainer when another backend (a test fake, say) has a positive
        # priority; SecretStore then uses the chainer's best member, which must be this one.
        default = keyring.get_keyring()
        members = default.backends if isinstance(default, chainer.ChainerBackend) else [default]
        assert isinstance(members[0], SecretService.Keyring)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_round_trip_goes_through_the_keyring(account_id: str) -> None:
    store = SecretStore()
    try:
        await store.start()
        await store.set(account_id, SECRET)
        assert await _read_directly(account_id) == SECRET
        assert await store.get(account_id) == SECRET
        await store.delete(account_id)
        assert await _read_directly(account_id) is None
        assert await store.get(account_id) is None
        await store.delete(account_id)  # already gone: not an error
        assert store.persistent
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_restarted_app_sees_the_same_key(account_id: str) -> None:
    before = SecretStore()
    try:
        await before.set(account_id, SECRET)
        assert before.persistent, before.notice
    finally:
        await before.close()

    after = SecretStore()
    try:
        await after.start()
        assert after.persistent, after.notice
        assert await after.get(account_id) == SECRET
        await after.delete(account_id)
    finally:
        await after.close()

    again = SecretStore()
    try:
        assert await again.get(account_id) is None
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_accounts_keep_their_keys_in_the_secret_service_only(tmp_path) -> None:
    """Three accounts through AccountService: keys in the real keyring, never in the settings file;
    a restarted service reads them back; removing an account removes its key."""
    import httpx

    from desktop_app.domain.accounts import Account
    from desktop_app.domain.settings import Settings
    from desktop_app.services.accounts.accounts import AccountService
    from desktop_app.services.accounts.catalog import ModelCatalog
    from desktop_app.services.settings import SettingsService
    from desktop_app.services.settings_store import SettingsStore

    settings_file = tmp_path / "settings.json"
    keys = {
        f"sk-ant-{uuid.uuid4().hex}": "anthropic",
        f"sk-{uuid.uuid4().hex}": "openai",
        f"gsk_{uuid.uuid4().hex}": "groq",
    }
    async with httpx.AsyncClient() as http:
        secrets = SecretStore()
        service = AccountService(
            settings=SettingsService(store=SettingsStore(settings_file), settings=Settings()),
            secrets=secrets,
            catalog=ModelCatalog(http=http, cache_file=tmp_path / "m.json"),
        )
        accounts = {}
        for key, provider_id in keys.items():
            account = Account(provider_id=provider_id, label=f"{provider_id} test")
            await service.save_account(account, key)
            accounts[account.id] = key
        assert secrets.persistent
        await secrets.close()

        text = settings_file.read_text()
        assert all(key not in text for key in keys)
        restarted = SecretStore()
        try:
            for account_id, key in accounts.items():
                assert await restarted.get(account_id) == key
                assert await _read_directly(account_id) == key
            service2 = AccountService(
                settings=SettingsService(
                    store=SettingsStore(settings_file), settings=SettingsStore(settings_file).load()[0]
                ),
                secrets=restarted,
                catalog=ModelCatalog(http=http, cache_file=tmp_path / "m.json"),
            )
            for account_id in accounts:
                await service2.remove_account(account_id)
                assert await _read_directly(account_id) is None
        finally:
            await restarted.close()
