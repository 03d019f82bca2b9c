"""Credential headers of accounts (Cookie, api-key, X-Goog-Api-Key...): their values are secrets.

They are kept in the SecretStore beside the account's key, as one JSON entry named
"<account id>/headers"; settings.json holds only their names (`Account.secret_headers`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts.secrets import SecretStore

log = logging.getLogger(__name__)


def entry_name(account_id: str) -> str:
    return f"{account_id}/headers"


async def read(secrets: SecretStore, account_id: str) -> dict[str, str]:
    raw = await secrets.get(entry_name(account_id))
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except ValueError:
        log.warning("the stored credential headers of account %s are unreadable", account_id)
        return {}
    if not isinstance(values, dict):
        return {}
    return {str(k): v for k, v in values.items() if isinstance(v, str)}


async def write(secrets: SecretStore, account_id: str, values: Mapping[str, str]) -> None:
    """Store exactly `values` (none: the entry is deleted)."""
    if values:
        await secrets.set(entry_name(account_id), json.dumps(dict(values)))
    else:
        await secrets.delete(entry_name(account_id))


async def resolved(secrets: SecretStore, account: Account) -> Account:
    """The account with its credential headers' values, ready to be sent (see Account.request_headers)."""
    if not account.secret_headers:
        return account
    return account.with_secret_values(await read(secrets, account.id))
