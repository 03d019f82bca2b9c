"""SecretStore against fake keyring backends: persistence, fallback, hangs, failures, leaks."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable

import keyring.backend
import keyring.errors
import pytest
import pytest_asyncio
from keyring.backends import chainer, fail

from desktop_app.services.accounts import secrets
from desktop_app.services.accounts.secrets import SecretStore

SECRET = "sk-test-0123456789abcdefSECRET"
OTHER_SECRET = "sk-test-fedcba9876543210OTHER"
# Every wait in these tests is bounded by this; the store's own timeouts are far shorter.
GUARD_S = 10.0


class InMemoryKeyring(keyring.backend.KeyringBackend):
    """A working keyring that records which thread each call ran on."""

    # Negative: keyring registers every subclass, and a positive priority would let
    # keyring.get_keyring() pick this fake anywhere else in the test session.
    priority = -1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.threads: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.threads.append(threading.current_thread().name)
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.threads.append(threading.current_thread().name)
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.threads.append(threading.current_thread().name)
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("No such password!") from None


class HangingKeyring(InMemoryKeyring):
    """get_password blocks on `release` once `hang` is set (from the start, by default)."""

    def __init__(self, *, hang_from_start: bool = True) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()
        if hang_from_start:
            self.hang.set()

    def get_password(self, service: str, username: str) -> str | None:
        if self.hang.is_set():
            self.entered.set()
            self.release.wait()
        return super().get_password(service, username)


class FailingSetKeyring(InMemoryKeyring):
    """set_password fails with the worst possible message: one that contains the key."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"could not store {password!r} for {username}")


class LockedKeyring(InMemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class PlaintextLikeKeyring(InMemoryKeyring):
    """Stands in for keyrings.alt.file.PlaintextKeyring: refused by its module name."""

    __module__ = "keyrings.alt.file"


class FakeChainer(chainer.ChainerBackend):
    """A chainer over a fixed list instead of every installed backend."""

    priority = -1
    backends: list[keyring.backend.KeyringBackend] = []  # noqa: RUF012 (hides the parent's class property)

    def __init__(self, members: list[keyring.backend.KeyringBackend]) -> None:
        super().__init__()
        self.backends = members


class Degraded:
    """Records on_degraded calls."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def __call__(self, notice: str) -> None:
        self.notices.append(notice)


@pytest.fixture
def degraded() -> Degraded:
    return Degraded()


@pytest_asyncio.fixture
async def make_store(
    degraded: Degraded,
) -> AsyncIterator[Callable[..., SecretStore]]:
    stores: list[SecretStore] = []
    hanging: list[HangingKeyring] = []

    def make(backend: keyring.backend.KeyringBackend, *, timeout_s: float = 2.0) -> SecretStore:
        if isinstance(backend, HangingKeyring):
            hanging.append(backend)
        store = SecretStore(timeout_s=timeout_s, backend=backend, on_degraded=degraded)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()
    for backend in hanging:
        backend.release.set()


def assert_no_secret(text: str) -> None:
    assert SECRET not in text
    assert OTHER_SECRET not in text


def assert_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert_no_secret(record.getMessage())
        assert_no_secret(record.exc_text or "")
    assert_no_secret(caplog.text)


@pytest.mark.asyncio
async def test_working_keyring_is_persistent_and_round_trips(make_store, degraded) -> None:
    backend = InMemoryKeyring()
    store = make_store(backend)

    await asyncio.wait_for(store.start(), GUARD_S)

    assert store.persistent
    assert store.backend_name == backend.name
    assert store.notice is None
    await store.set("acct1", SECRET)
    assert backend.entries == {("ModelDesk", "acct1"): SECRET}
    assert await store.get("acct1") == SECRET
    assert await store.get("unknown") is None
    await store.delete("acct1")
    assert backend.entries == {}
    assert await store.get("acct1") is None
    await store.delete("acct1")  # already gone: not an error
    assert store.persistent
    assert degraded.notices == []


@pytest.mark.asyncio
async def test_keyring_calls_run_on_the_secrets_thread(make_store) -> None:
    backend = InMemoryKeyring()
    store = make_store(backend)

    await store.start()
    await store.set("acct1", SECRET)
    await store.get("acct1")
    await store.delete("acct1")

    assert len(backend.threads) == 4  # probe, set, get, delete
    assert set(backend.threads) == {"secrets"}
    assert threading.current_thread().name not in backend.threads


@pytest.mark.asyncio
async def test_a_store_sees_keys_left_by_an_earlier_one(make_store) -> None:
    backend = InMemoryKeyring()
    first = make_store(backend)
    await first.set("acct1", SECRET)
    await first.close()

    second = make_store(backend)
    assert await second.get("acct1") == SECRET  # get() starts the store if needed


@pytest.mark.asyncio
async def test_fail_backend_means_memory_mode_with_a_notice(make_store, degraded) -> None:
    store = make_store(fail.Keyring())

    await store.start()

    assert not store.persistent
    assert store.backend_name == "none"
    assert store.notice == secrets.NOTICE_NO_KEYRING
    assert degraded.notices == [store.notice]
    await store.set("acct1", SECRET)
    assert await store.get("acct1") == SECRET
    await store.delete("acct1")
    assert await store.get("acct1") is None
    await store.delete("acct1")


@pytest.mark.asyncio
async def test_file_backend_from_keyrings_alt_is_refused(make_store) -> None:
    backend = PlaintextLikeKeyring()
    store = make_store(backend)

    await store.start()
    await store.set("acct1", SECRET)

    assert not store.persistent
    assert store.notice == secrets.NOTICE_FILE_KEYRING
    assert backend.entries == {}
    assert backend.threads == []  # not even probed
    assert await store.get("acct1") == SECRET


@pytest.mark.asyncio
async def test_chainer_uses_its_best_trusted_member_only(make_store) -> None:
    trusted = InMemoryKeyring()
    plaintext = PlaintextLikeKeyring()
    store = make_store(FakeChainer([plaintext, trusted]))

    await store.start()
    await store.set("acct1", SECRET)

    assert store.persistent
    assert store.backend_name == trusted.name
    assert trusted.entries == {("ModelDesk", "acct1"): SECRET}
    assert plaintext.entries == {}


@pytest.mark.asyncio
async def test_chainer_of_file_backends_only_is_refused(make_store) -> None:
    store = make_store(FakeChainer([PlaintextLikeKeyring()]))

    await store.start()

    assert not store.persistent
    assert store.notice == secrets.NOTICE_FILE_KEYRING


@pytest.mark.asyncio
async def test_empty_chainer_means_memory_mode(make_store) -> None:
    store = make_store(FakeChainer([]))

    await store.start()

    assert not store.persistent
    assert store.notice == secrets.NOTICE_NO_KEYRING


@pytest.mark.asyncio
async def test_locked_keyring_at_start_says_so(make_store, degraded) -> None:
    store = make_store(LockedKeyring())

    await store.start()

    assert not store.persistent
    assert store.notice == secrets.NOTICE_LOCKED
    assert degraded.notices == [secrets.NOTICE_LOCKED]


@pytest.mark.asyncio
async def test_hung_probe_times_out_and_later_calls_do_not_wait(make_store, degraded) -> None:
    backend = HangingKeyring()
    store = make_store(backend, timeout_s=0.2)

    # The probe never returns on its own: only the store's 0.2 s timeout can end start().
    await asyncio.wait_for(store.start(), GUARD_S)

    assert backend.entered.is_set()
    assert not store.persistent
    assert store.notice == secrets.NOTICE_HUNG
    assert degraded.notices == [secrets.NOTICE_HUNG]
    # The worker is still stuck in the probe; these must not queue behind it.
    await asyncio.wait_for(store.set("acct1", SECRET), GUARD_S)
    assert await asyncio.wait_for(store.get("acct1"), GUARD_S) == SECRET
    await asyncio.wait_for(store.delete("acct1"), GUARD_S)
    assert backend.threads == []  # the probe never got past the hang
    assert backend.entries == {}


@pytest.mark.asyncio
async def test_hang_at_runtime_degrades_and_keeps_queued_values(make_store, degraded) -> None:
    backend = HangingKeyring(hang_from_start=False)
    store = make_store(backend, timeout_s=0.2)
    await store.start()
    await store.set("acct1", SECRET)
    assert store.persistent
    backend.hang.set()

    # get("acct1") hangs on the worker; set("acct2") queues behind it.
    got, _ = await asyncio.wait_for(asyncio.gather(store.get("acct1"), store.set("acct2", OTHER_SECRET)), GUARD_S)

    assert got == SECRET  # known from this session's set()
    assert not store.persistent
    assert store.notice == secrets.NOTICE_HUNG
    assert degraded.notices == [secrets.NOTICE_HUNG]  # once, not per failed call
    assert await asyncio.wait_for(store.get("acct2"), GUARD_S) == OTHER_SECRET
    await asyncio.wait_for(store.set("acct3", SECRET), GUARD_S)
    assert await asyncio.wait_for(store.get("acct3"), GUARD_S) == SECRET
    assert ("ModelDesk", "acct2") not in backend.entries


@pytest.mark.asyncio
async def test_failing_set_keeps_the_value_and_never_leaks_it(make_store, degraded, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    store = make_store(FailingSetKeyring())
    await store.start()
    assert store.persistent

    await store.set("acct1", SECRET)

    assert await store.get("acct1") == SECRET
    assert not store.persistent
    assert store.notice == secrets.NOTICE_FAILED
    assert degraded.notices == [secrets.NOTICE_FAILED]
    assert_no_secret(store.notice)
    assert_no_secret(repr(store))
    assert_logs_clean(caplog)
    assert any("PasswordSetError" in record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_repr_and_logs_never_show_a_key(make_store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    backend = InMemoryKeyring()
    store = make_store(backend)

    await store.start()
    await store.set("acct1", SECRET)
    await store.get("acct1")
    await store.set("acct2", OTHER_SECRET)
    await store.delete("acct2")

    text = repr(store)
    assert_no_secret(text)
    assert "persistent=True" in text
    assert_logs_clean(caplog)


@pytest.mark.asyncio
async def test_bad_arguments_are_refused_without_echoing_them(make_store) -> None:
    store = make_store(InMemoryKeyring())

    with pytest.raises(ValueError, match="a key must not be empty"):
        await store.set("acct1", "")
    with pytest.raises(ValueError, match="an account id must not be empty"):
        await store.set("", SECRET)
    with pytest.raises(TypeError) as excinfo:
        await store.set("acct1", SECRET.encode())  # type: ignore[arg-type]
    assert_no_secret(str(excinfo.value))


@pytest.mark.asyncio
async def test_close_does_not_wait_for_a_hung_call(make_store) -> None:
    backend = HangingKeyring(hang_from_start=False)
    store = make_store(backend, timeout_s=GUARD_S * 10)
    await store.set("acct1", SECRET)
    backend.hang.set()
    pending = asyncio.ensure_future(store.get("acct1"))
    await asyncio.wait_for(asyncio.to_thread(backend.entered.wait), GUARD_S)

    await asyncio.wait_for(store.close(), GUARD_S)

    with pytest.raises(RuntimeError):
        await store.get("acct1")
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
