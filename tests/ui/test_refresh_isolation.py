"""Chat > Refresh models: one account that cannot be asked is that account's sentence, never the
others' silence. The bad accounts are built past validation, as an older settings file holds them."""

from __future__ import annotations

import logging

from desktop_app.domain.accounts import Account
from tests.ui.conftest import run


def unchecked(label: str, base_url: str, headers: dict[str, str] | None = None) -> Account:
    return Account.model_construct(
        id=f"bad{abs(hash(label)) % 10_000}",
        provider_id="openai_compatible",
        label=label,
        base_url=base_url,
        colour="",
        extra_headers=headers or {},
        secret_headers=(),
        enabled=True,
        organization_id=None,
        daily_budget_tokens=None,
        daily_budget_usd=None,
    )


def test_one_bad_account_never_stops_the_others_refresh(qtbot, modeldesk, fault_account, fault_server, caplog):
    bad = [
        unchecked("Bracket", "http://[::1"),
        unchecked("Port", "http://127.0.0.1:99999/v1"),
        unchecked("Accent", fault_server.base_url, {"X-Title": "Café"}),
    ]
    run(qtbot, modeldesk.settings.update(accounts=[*bad, *modeldesk.settings.current.accounts]))
    modeldesk.catalog.forget(fault_account.id)
    pane = modeldesk.chat_pane
    pane._reload_picker()
    assert not pane.select_model(fault_account.id, "ok")

    with caplog.at_level(logging.WARNING), qtbot.waitSignal(pane.models_refreshed, timeout=20_000):
        pane.refresh_button.click()

    assert pane.select_model(fault_account.id, "ok")  # the good account after the bad ones was listed
    notice = pane.notice.text()
    assert (
        "Bracket: Nothing was sent to account “Bracket”: an IPv6 address in the base URL needs both "
        "brackets, as in http://[::1]:8080."
    ) in notice
    assert (
        "Port: Nothing was sent to account “Port”: the port of the base URL must be a number from 1 to 65535." in notice
    )
    assert (
        "Accent: Nothing was sent to account “Accent”: the value of X-Title must be plain ASCII: HTTP sends "
        "header values as bytes, so percent-encode other characters (Café as Caf%C3%A9)."
    ) in notice
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
