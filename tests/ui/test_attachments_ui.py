"""Attaching files in the chat pane: the Attach button's path, paste, drop, the chips, the thumbnails
in the transcript, the viewer, and the sentences for what cannot be attached or seen."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage, QTextDocument
from PySide6.QtWidgets import QApplication

from desktop_app.domain.accounts import Account
from desktop_app.domain.attachments import AttachmentKind
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import WAIT_MS, run


def png_file(folder: Path, name: str = "chart.png", size: tuple[int, int] = (120, 80)) -> Path:
    path = folder / name
    Image.new("RGB", size, (30, 120, 200)).save(path, "PNG")
    return path


def send(qtbot, pane, text: str, expect: str = "complete") -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [expect]


def thumbnails(transcript) -> list[str]:
    """The names of the images the transcript shows, in order."""
    found = []
    block = transcript.document().begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            if fragment.charFormat().isImageFormat():
                found.append(fragment.charFormat().toImageFormat().name())
            fragments += 1
        block = block.next()
    return found


@pytest.fixture
def pane(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    return pane


def test_an_attached_image_goes_with_the_message_and_shows_as_a_thumbnail(
    qtbot, modeldesk, pane, fault_server, tmp_path
) -> None:
    picture = png_file(tmp_path)
    notes = tmp_path / "notes.md"
    notes.write_text("# Plan\n- ship it\n", "utf-8")
    tray = pane.attachment_tray
    assert tray.isHidden()
    run(qtbot, tray.add_path(picture))
    run(qtbot, tray.add_path(notes))
    run(qtbot, tray.add_path(picture))  # the same file twice goes once
    assert [a.name for a in tray.attachments] == ["chart.png", "notes.md"] and not tray.isHidden()

    send(qtbot, pane, "What does the chart show?")
    body = fault_server.requests[-1].json()
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What does the chart show?"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()
    assert parts[2] == {"type": "text", "text": "notes.md:\n```\n# Plan\n- ship it\n\n```"}
    assert tray.isHidden() and tray.attachments == ()  # they went with the message
    [question, _] = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))
    [image] = [a for a in question.attachments if a.kind is AttachmentKind.IMAGE]
    assert [a.name for a in question.attachments] == ["chart.png", "notes.md"]
    assert thumbnails(pane.transcript) == [f"thumbnail:{image.digest}"]
    assert "📎 notes.md" in pane.transcript.toPlainText()

    # Reopened, the message shows its files again; a click on the thumbnail opens the picture.
    conversation = pane.current_conversation
    run(qtbot, pane.new_conversation())
    assert thumbnails(pane.transcript) == []
    run(qtbot, pane.open_conversation(conversation))
    assert thumbnails(pane.transcript) == [f"thumbnail:{image.digest}"]
    resource = pane.transcript.document().resource(
        QTextDocument.ResourceType.ImageResource, QUrl(f"thumbnail:{image.digest}")
    )
    assert isinstance(resource, QImage) and resource.width() <= 160 and not resource.isNull()
    pane.transcript.anchorClicked.emit(QUrl(f"attachment:{image.digest}"))
    qtbot.waitUntil(lambda: _viewer(pane) is not None and _viewer(pane).isVisible(), timeout=WAIT_MS)
    viewer = _viewer(pane)
    assert viewer.picture.pixmap().size().toTuple() == (120, 80)
    viewer.close()


def _viewer(pane):
    from desktop_app.ui.chat.image_viewer import AttachmentViewer

    return pane.window().findChild(AttachmentViewer)


def test_an_image_pasted_or_files_dropped_on_the_message_are_attached(qtbot, pane, tmp_path) -> None:
    tray = pane.attachment_tray
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.red)
    QGuiApplication.clipboard().setImage(image)
    pane.composer.setFocus()
    qtbot.keyClick(pane.composer, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(tray.attachments) == 1, timeout=WAIT_MS)
    assert tray.attachments[0].name == "pasted image.png" and pane.composer.toPlainText() == ""

    dropped = QMimeData()
    dropped.setUrls([QUrl.fromLocalFile(str(png_file(tmp_path, "dropped.png", (20, 20))))])
    at, buttons, keys = QPoint(5, 5), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(at, Qt.DropAction.CopyAction, dropped, buttons, keys)
    QApplication.sendEvent(pane.composer.viewport(), enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, dropped, buttons, keys)
    QApplication.sendEvent(pane.composer.viewport(), drop)
    qtbot.waitUntil(lambda: len(tray.attachments) == 2, timeout=WAIT_MS)
    assert tray.attachments[1].name == "dropped.png"

    # Text on the clipboard is pasted as text, as ever.
    QGuiApplication.clipboard().setText("plain words")
    qtbot.keyClick(pane.composer, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert pane.composer.toPlainText() == "plain words" and len(tray.attachments) == 2

    [first, _] = [c for c in tray.children() if getattr(c, "attachment", None) is not None]
    qtbot.mouseClick(first.remove_button, Qt.MouseButton.LeftButton)
    assert [a.name for a in tray.attachments] == ["dropped.png"]


def test_what_cannot_be_attached_is_said_and_the_message_is_kept(qtbot, pane, tmp_path) -> None:
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"this is not a picture")
    pane.composer.setPlainText("Look at this")
    run(qtbot, pane.attachment_tray.add_path(fake))
    assert pane.notice.isVisibleTo(pane)
    assert "photo.png is not an image ModelDesk can read (PNG, JPEG, WebP or GIF)." in pane.notice.text()
    assert pane.attachment_tray.attachments == () and pane.composer.toPlainText() == "Look at this"


def test_a_model_that_cannot_see_is_refused_the_image_before_anything_is_stored(
    qtbot, modeldesk, fault_server, tmp_path
) -> None:
    pane = modeldesk.chat_pane
    account = Account(provider_id="openai", label="Work", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(account.id))
    assert pane.select_model(account.id, "o3-mini")
    run(qtbot, pane.attachment_tray.add_path(png_file(tmp_path)))
    pane.composer.setPlainText("Describe it")
    requests_before = len(fault_server.requests)
    sentence = "o3-mini on Work does not take images; pick a vision model or remove the image."
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sentence in pane.transcript.toPlainText() + pane.notice.text(), timeout=WAIT_MS)
    assert len(fault_server.requests) == requests_before
    assert pane.composer.toPlainText() == "Describe it" and len(pane.attachment_tray.attachments) == 1
    assert pane.current_conversation is None or run(qtbot, modeldesk.store.messages(pane.current_conversation.id)) == []


def test_an_ollama_model_without_vision_is_refused_the_image_and_a_vision_model_gets_it(
    qtbot, modeldesk, tmp_path
) -> None:
    """Ollama's `/api/show` capabilities decide (LiteLLM's map knows no local model)."""
    pane = modeldesk.chat_pane
    with OllamaServer(installed=("gemma3:270m", "gemma3:4b")) as server:
        account = Account(provider_id="ollama", label="Local Ollama", base_url=server.base_url)
        run(qtbot, modeldesk.accounts.save_account(account, ""))
        run(qtbot, modeldesk.accounts.refresh_models(account.id))
        assert pane.select_model(account.id, "gemma3:270m")
        picture = png_file(tmp_path)
        run(qtbot, pane.attachment_tray.add_path(picture))
        pane.composer.setPlainText("Describe it")
        sentence = "gemma3:270m on Local Ollama does not take images; pick a vision model or remove the image."
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: sentence in pane.transcript.toPlainText() + pane.notice.text(), timeout=WAIT_MS)
        assert not [r for r in server.requests if r.path == "/api/chat"]
        assert pane.composer.toPlainText() == "Describe it" and len(pane.attachment_tray.attachments) == 1

        assert pane.select_model(account.id, "gemma3:4b")
        qtbot.waitUntil(lambda: pane.model_info.text() == "vision", timeout=WAIT_MS)
        send(qtbot, pane, "Describe it")
        [chat] = [r.json() for r in server.requests if r.path == "/api/chat"]
        assert chat["model"] == "gemma3:4b"
        assert chat["messages"][-1]["images"] == [base64.b64encode(picture.read_bytes()).decode()]


def test_an_image_attached_for_one_provider_is_fitted_to_the_one_picked_at_send(
    qtbot, modeldesk, fault_server, tmp_path
) -> None:
    """Attached while an OpenAI model was picked (2,048 px), sent to Claude (1,568 px): scaled again
    from the stored picture; one already within Claude's limits goes as it was."""
    pane = modeldesk.chat_pane
    openai = Account(provider_id="openai", label="Work", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(openai, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(openai.id))
    assert pane.select_model(openai.id, "ok")
    big = run(qtbot, pane.attachment_tray.add_path(png_file(tmp_path, "wide.png", (2000, 1000))))
    small = run(qtbot, pane.attachment_tray.add_path(png_file(tmp_path, "small.png", (1000, 500))))
    assert (big.width, big.note) == (2000, "")  # it fits OpenAI's limits as it is

    with AnthropicServer() as server:
        claude = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        run(qtbot, modeldesk.accounts.save_account(claude, "sk-ant-test-a"))
        run(qtbot, modeldesk.accounts.refresh_models(claude.id))
        assert pane.select_model(claude.id, "claude-sonnet-4-5")
        send(qtbot, pane, "Compare them")
        [body] = [r.json() for r in server.requests if r.path == "/v1/messages"]
    images = [b for b in body["messages"][-1]["content"] if b["type"] == "image"]
    sizes = [Image.open(io.BytesIO(base64.b64decode(b["source"]["data"]))).size for b in images]
    assert sizes == [(1568, 784), (1000, 500)]
    [question, _] = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))
    fitted, kept = question.attachments
    assert (fitted.name, fitted.width, fitted.height) == ("wide.png", 1568, 784) and fitted.digest != big.digest
    assert fitted.note.startswith("wide.png was scaled down from 2000×1000 to 1568×784")
    assert kept == small
    assert thumbnails(pane.transcript) == [f"thumbnail:{fitted.digest}", f"thumbnail:{small.digest}"]
    assert pane.attachment_tray.attachments == ()


def test_deleting_the_last_conversation_that_uses_a_file_removes_it(qtbot, modeldesk, pane, tmp_path) -> None:
    chat = modeldesk.chat
    run(qtbot, pane.attachment_tray.add_path(png_file(tmp_path, "kept.png")))
    send(qtbot, pane, "first")
    first = pane.current_conversation
    [kept] = run(qtbot, modeldesk.store.messages(first.id))[0].attachments
    [question, _] = run(qtbot, modeldesk.store.messages(first.id))
    branch = run(qtbot, chat.branch(question.id))  # a second conversation refers to the same file
    waiting = run(qtbot, pane.attachment_tray.add_path(png_file(tmp_path, "waiting.png", (30, 30))))

    run(qtbot, pane.open_conversation(first))
    run(qtbot, pane.delete_current())
    assert chat.attachment_path(kept).exists()  # the branch still shows it
    run(qtbot, pane.open_conversation(branch))
    run(qtbot, pane.delete_current())
    assert not chat.attachment_path(kept).exists()
    assert chat.attachment_path(waiting).exists()  # attached to the message being written
    assert pane.attachment_tray.attachments == (waiting,)
