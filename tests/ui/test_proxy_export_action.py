"""File > Export as LiteLLM Proxy config: the file is written and the status bar names every
environment variable the proxy needs, its master key included."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from desktop_app.domain.accounts import Account
from tests.ui.conftest import WAIT_MS


def test_the_status_bar_lists_every_variable_the_proxy_needs(
    qtbot, modeldesk, fault_account: Account, tmp_path: Path
) -> None:
    window = modeldesk.window
    window.export_proxy_action.trigger()
    dialog = window.findChild(QFileDialog)
    assert dialog is not None and dialog.isVisible()
    target = tmp_path / "proxy.yaml"

    dialog.selectFile(str(target))
    dialog.accept()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Wrote"), timeout=WAIT_MS)

    assert window.statusBar().currentMessage() == (
        f"Wrote {target}. Set LITELLM_MASTER_KEY, MODELDESK_FAULT_LAB_KEY on the proxy host."
    )
    text = target.read_text("utf-8")
    assert "master_key: os.environ/LITELLM_MASTER_KEY" in text
    assert "api_key: os.environ/MODELDESK_FAULT_LAB_KEY" in text
