"""Presets from the chat pane: save, apply, rename and delete through their dialogs; a conversation
keeps which preset it started from; what was saved is there at the next start."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop_app.domain.chat import ChatParams
from tests.ui.conftest import WAIT_MS, run


def _name_and_accept(qtbot, box, name: str) -> None:
    qtbot.waitUntil(lambda: box.name_dialog is not None and box.name_dialog.isVisible(), timeout=WAIT_MS)
    dialog = box.name_dialog
    dialog.setTextValue(name)
    dialog.accept()


def test_save_apply_rename_delete_and_the_conversation_remembers_its_preset(
    qtbot, modeldesk, fault_account, fault_server
):
    pane = modeldesk.chat_pane
    box, panel = pane.presets_box, pane.params
    assert pane.select_model(fault_account.id, "ok")
    assert box.combo.count() == 0 and not box.apply_button.isEnabled()

    panel.system_prompt.setPlainText("Answer in one line.")
    panel.temperature.setValue(0.2)
    panel.top_k.setValue(20)
    panel.presence_penalty.setValue(0.4)
    panel.response_format.setCurrentIndex(1)  # JSON object
    box.save_button.click()
    _name_and_accept(qtbot, box, "Terse")
    qtbot.waitUntil(lambda: box.combo.currentText() == "Terse", timeout=WAIT_MS)
    saved = json.loads(modeldesk.presets.path.read_text())["presets"]
    assert [p["name"] for p in saved] == ["Terse"] and saved[0]["params"]["system_prompt"] == "Answer in one line."

    # Something else in the panel, then the preset back.
    panel.set_params(ChatParams(temperature=1.5))
    box.apply_button.click()
    applied = panel.params()
    assert applied.system_prompt == "Answer in one line." and (applied.temperature, applied.top_k) == (0.2, 20)
    assert applied.presence_penalty == 0.4 and applied.preset == "Terse"
    assert box.started_from.text() == "Started from “Terse”"

    # A conversation sent with it keeps the name; what it sent is the preset's.
    pane.composer.setPlainText("preset please")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert body["messages"][0] == {"role": "system", "content": "Answer in one line."}
    assert (body["temperature"], body["presence_penalty"], body["response_format"]) == (
        0.2,
        0.4,
        {"type": "json_object"},
    )
    first = pane.current_conversation
    assert run(qtbot, modeldesk.store.list_conversations())[0].params.preset == "Terse"

    # Another conversation without it; reopening the first shows where it started.
    run(qtbot, pane.new_conversation())
    panel.set_params(ChatParams())
    assert not box.started_from.isVisibleTo(box)
    run(qtbot, pane.open_conversation(first))
    assert box.started_from.text() == "Started from “Terse”" and box.started_from.isVisibleTo(box)

    # Rename, then delete (after asking).
    box.rename_button.click()
    _name_and_accept(qtbot, box, "Brief")
    qtbot.waitUntil(lambda: box.combo.currentText() == "Brief", timeout=WAIT_MS)
    assert [box.combo.itemText(i) for i in range(box.combo.count())] == ["Brief"]
    box.delete_button.click()
    qtbot.waitUntil(lambda: box.confirm_box is not None and box.confirm_box.isVisible(), timeout=WAIT_MS)
    box.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: box.combo.count() == 0, timeout=WAIT_MS)
    assert json.loads(modeldesk.presets.path.read_text())["presets"] == []
    # The conversation's parameters are its own: deleting the preset changes nothing in it.
    assert run(qtbot, modeldesk.store.list_conversations())[-1].params.temperature == 0.2


def test_a_name_already_taken_is_said_where_the_presets_are(qtbot, modeldesk):
    box = modeldesk.chat_pane.presets_box
    run(qtbot, box.save_current("Terse"))
    run(qtbot, box.save_current("Creative"))
    run(qtbot, box.rename("Creative", "Terse"))
    assert box.problem.isVisibleTo(box) and box.problem.text() == "There is already a preset named “Terse”."
    assert sorted(p.name for p in modeldesk.presets.presets) == ["Creative", "Terse"]
    run(qtbot, box.save_current("   "))
    assert box.problem.text() == "A preset needs a name."


def test_presets_are_there_at_the_next_start(qtbot, qloop, tmp_path):
    from desktop_app.app import ModelDeskApp
    from desktop_app.services.paths import AppPaths

    def start() -> ModelDeskApp:
        app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
        app.window.show()
        qtbot.waitExposed(app.window)
        run(qtbot, app.start())
        return app

    def close(app: ModelDeskApp) -> None:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()

    first = start()
    try:
        first.chat_pane.params.temperature.setValue(0.7)
        run(qtbot, first.chat_pane.presets_box.save_current("Warm"))
    finally:
        close(first)
    again = start()
    try:
        box = again.chat_pane.presets_box
        assert [box.combo.itemText(i) for i in range(box.combo.count())] == ["Warm"]
        assert box.apply("Warm") and again.chat_pane.params.params().temperature == 0.7
    finally:
        close(again)


def test_a_preset_keeps_the_values_of_rows_the_picked_model_hides(qtbot, modeldesk):
    """Saved while a model that takes no seed is picked, the preset still has the seed for one that does."""
    pane = modeldesk.chat_pane
    panel = pane.params
    panel.seed.setValue(42)
    panel.temperature.setValue(0.3)
    panel.set_shown(("temperature",))  # what the pane does for a model that takes only temperature
    assert panel.params().seed is None  # not sent...
    run(qtbot, pane.presets_box.save_current("Seeded"))
    assert modeldesk.presets.find("Seeded").params.seed == 42  # ...but kept
    panel.set_shown(None)
    panel.set_params(ChatParams())
    assert pane.presets_box.apply("Seeded") and panel.params().seed == 42
