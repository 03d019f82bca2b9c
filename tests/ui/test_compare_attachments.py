"""Files attached in compare mode: they go with every column's request (the strict loopback OpenAI
server checks the content parts), show under the message in every column, and a column whose model
cannot see the image says so in its own transcript while the others answer."""

from __future__ import annotations

import base64

from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from tests.ui.conftest import WAIT_MS, run
from tests.ui.test_attachments_ui import png_file, thumbnails

BLIND = "o3-mini on Work does not take images; pick a vision model or remove the image."


def _chat_bodies(server) -> list[dict]:
    return [r.json() for r in server.requests if r.path.endswith("/chat/completions")]


def _comparison(qtbot, app, targets: list[tuple[str, str]]):
    pane = app.chat_pane
    app.window.show_pane("Chat")
    assert pane.select_model(*targets[0])
    qtbot.mouseClick(pane.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.comparing, timeout=WAIT_MS)
    view = pane.compare
    while len(view.columns) < len(targets):
        qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
    for column, target in zip(view.columns, targets, strict=True):
        assert column.set_target(*target)
    return view


def test_an_image_goes_to_every_column_and_a_column_that_cannot_see_says_so(
    qtbot, modeldesk, fault_account, fault_server, tmp_path
):
    work = Account(provider_id="openai", label="Work", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(work, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(work.id))
    view = _comparison(qtbot, modeldesk, [(work.id, "ok"), (work.id, "o3-mini"), (fault_account.id, "ok")])
    picture = png_file(tmp_path)
    attached = run(qtbot, view.attachment_tray.add_path(picture))
    assert attached is not None and not view.attachment_tray.isHidden()

    view.composer.setPlainText("What does the chart show?")
    with qtbot.waitSignal(view.turn_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == ["complete", "failed", "complete"]

    image = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()},
    }
    bodies = _chat_bodies(fault_server)
    assert len(bodies) == 2  # the column that cannot see sent nothing
    for body in bodies:
        assert body["messages"][-1]["content"] == [{"type": "text", "text": "What does the chart show?"}, image]
    assert BLIND in view.columns[1].transcript.toPlainText()
    assert all(BLIND not in view.columns[k].transcript.toPlainText() for k in (0, 2))
    for column in view.columns:
        assert thumbnails(column.transcript) == [f"thumbnail:{attached.digest}"]
    assert view.attachment_tray.attachments == () and view.attachment_tray.isHidden()
    [question, *_] = run(qtbot, modeldesk.store.messages(view.conversation.id, lane=1))
    assert (question.lane, question.attachments) == (0, (attached,))  # one shared message, with its file

    # Reopened, every column shows the picture again.
    compared = view.conversation
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.new_conversation())
    run(qtbot, pane.open_conversation(run(qtbot, modeldesk.store.get_conversation(compared.id))))
    for column in view.columns:
        assert thumbnails(column.transcript) == [f"thumbnail:{attached.digest}"]


def test_when_no_column_can_see_the_image_nothing_is_stored_or_sent(qtbot, modeldesk, fault_server, tmp_path):
    work = Account(provider_id="openai", label="Work", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(work, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(work.id))
    view = _comparison(qtbot, modeldesk, [(work.id, "o3-mini"), (work.id, "o3-mini")])
    run(qtbot, view.attachment_tray.add_path(png_file(tmp_path)))
    view.composer.setPlainText("Describe it")
    run(qtbot, view.send("Describe it"))
    assert view.notice.isVisible() and BLIND in view.notice.text()
    assert view.conversation is None and not _chat_bodies(fault_server)
    assert view.composer.toPlainText() == "Describe it" and len(view.attachment_tray.attachments) == 1
