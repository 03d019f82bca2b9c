"""The Usage pane's organisation figures for docs/org-usage.png: the Anthropic Admin API twin with a
week of usage, costs and keys, an account whose key and admin key belong to it."""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack
from datetime import UTC, datetime

ADMIN_URL = "MODELDESK_SHOT_ADMIN_URL"  # where seed() points the "Claude, work" account


def start_admin_twin(servers: ExitStack) -> None:
    from tests.servers.anthropic_admin import AnthropicAdminTwin

    twin = servers.enter_context(AnthropicAdminTwin())
    twin.seed(datetime.now(UTC).date())
    os.environ[ADMIN_URL] = twin.base_url


async def stage_org(app) -> None:
    """Give "Claude, work" the twin's key and admin key (kept in memory), then show the figures."""
    from tests.servers.anthropic_admin import ADMIN_KEY, API_KEY_WORK

    work = next(a for a in app.accounts.accounts if a.label == "Claude, work")
    await app.secrets.set(work.id, API_KEY_WORK)
    await app.org.set_admin_key(work, ADMIN_KEY)
    app.window.show_pane("Usage")
    pane = app.usage_pane
    pane.range_combo.setCurrentIndex(pane.range_combo.findData(7))
    await pane.reload()
    await pane.org_panel.reload(pane.days)
    pane.org_panel.tabs.setCurrentIndex(int(os.environ.get("MODELDESK_SHOT_ORG_TAB", "0")))  # 2: the API keys
    pane.org_panel.select_key("apikey_01Work")
    await asyncio.sleep(0.2)
