"""A keyring kept in a dict, for tests and benchmarks: the code under test still goes through `keyring`."""

from __future__ import annotations

import keyring.backend


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real KeyringBackend kept in a dict; never touches the user's keyring."""

    priority = -1  # type: ignore[assignment]  (never chosen by keyring on its own)

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)
