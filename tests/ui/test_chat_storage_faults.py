"""The chat when the conversation history cannot be written: faults put into the real SQLite file of
the real app (another program's lock, a full tmpfs, a damaged page), the loopback fault server
answering. Nothing typed is lost; the transcript or a banner says why; Retry works once it is fixed."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.paths import AppPaths
from tests.ui.conftest import WAIT_MS, run
from tests.unit import sqlite_stores

LOCKED = "The conversation history database is locked by another program"


@pytest.fixture
def paths() -> AppPaths:
    return AppPaths.from_environment()


@pytest.fixture
def start_app(qtbot, qloop, fault_server) -> Iterator[Callable[[], ModelDeskApp]]:
    """Builds and starts the real app (its store waits 0.2 s for another program's lock), with an
    account on the fault server; closes it after the test."""
    apps: list[ModelDeskApp] = []

    def start() -> ModelDeskApp:
        app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
        app.store.busy_timeout_s = app.usage.busy_timeout_s = 0.2
        apps.append(app)
        app.window.show()
        qtbot.waitExposed(app.window)
        run(qtbot, app.start())
        account = Account(provider_id="openai_compatible", label="Fault lab", base_url=fault_server.base_url)
        run(qtbot, app.accounts.save_account(account, "sk-test"))
        run(qtbot, app.accounts.refresh_models(account.id))
        assert app.chat_pane.select_model(account.id, "ok")
        app.fault_account = account
        return app

    yield start
    for app in apps:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()


def shown(app: ModelDeskApp) -> str:
    return app.chat_pane.transcript.toPlainText()


def stored(qtbot, app: ModelDeskApp):
    return run(qtbot, app.store.messages(app.chat_pane.current_conversation.id))


def click_send(qtbot, app: ModelDeskApp, text: str) -> None:
    app.chat_pane.composer.setPlainText(text)
    qtbot.mouseClick(app.chat_pane.send_button, Qt.MouseButton.LeftButton)


def retry_and_wait(qtbot, app: ModelDeskApp, outcome: str = "complete") -> None:
    with qtbot.waitSignal(app.chat_pane.reply_finished, timeout=30_000) as finished:
        app.chat_pane.transcript.retry_requested.emit()
    assert finished.args == [outcome]


def test_a_message_the_locked_store_refuses_stays_in_the_composer_and_retry_sends_it(qtbot, start_app, paths) -> None:
    app = start_app()
    pane = app.chat_pane
    run(qtbot, pane.new_conversation())
    with sqlite_stores.write_lock_held(paths.database_file):
        click_send(qtbot, app, "do not lose me")
        qtbot.waitUntil(lambda: LOCKED in shown(app), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: pane.send_button.isEnabled(), timeout=WAIT_MS)
        assert f"{LOCKED} ({paths.database_file}); your message is kept." in shown(app)
        assert "Close the other program (or the other ModelDesk), then Retry." in shown(app)
        assert pane.composer.toPlainText() == "do not lose me"
        assert "Assistant" not in shown(app)  # no empty reply header
    assert stored(qtbot, app) == []
    retry_and_wait(qtbot, app)
    assert pane.composer.toPlainText() == ""
    assert LOCKED not in shown(app) and "do not lose me" in shown(app)
    user, reply = stored(qtbot, app)
    assert user.content == "do not lose me" and reply.status is MessageStatus.COMPLETE


def test_a_full_disk_says_so_with_the_folder_and_retry_sends_once_there_is_room(qtbot, start_app, paths) -> None:
    with sqlite_stores.small_disk(paths.data_dir, size_kib=1024) as folder:
        app = start_app()
        run(qtbot, app.chat_pane.new_conversation())
        filler = sqlite_stores.fill_disk(folder)
        message = "a long question " * 2000
        click_send(qtbot, app, message)
        expected = f"The disk holding the conversation history is full ({folder}); your message is kept."
        qtbot.waitUntil(lambda: expected in shown(app), timeout=WAIT_MS)
        assert "Free some space there, then Retry." in shown(app)
        assert app.chat_pane.composer.toPlainText() == message
        filler.unlink()
        retry_and_wait(qtbot, app)
        user, reply = stored(qtbot, app)
        assert user.content == message and reply.status is MessageStatus.COMPLETE
        run(qtbot, app.aclose())  # before the tmpfs goes


def test_a_lock_taken_while_the_reply_streams_keeps_the_reply_says_so_and_retry_saves_it(
    qtbot, start_app, paths
) -> None:
    app = start_app()
    pane = app.chat_pane
    assert pane.select_model(app.fault_account.id, "slow")
    pane.params.max_tokens.setValue(100)  # 100 chunks, 20 ms apart
    lock = contextlib.ExitStack()
    with lock, qtbot.waitSignal(pane.reply_finished, timeout=30_000) as finished:
        click_send(qtbot, app, "stream through the lock")
        qtbot.waitUntil(lambda: "word5 " in pane.transcript.plain_text_of_last_message(), timeout=WAIT_MS)
        lock.enter_context(sqlite_stores.write_lock_held(paths.database_file))
        qtbot.waitUntil(lambda: not pane.streaming, timeout=30_000)
    assert finished.args == ["complete"]  # not cut
    text = "".join(f"word{i} " for i in range(100))
    assert f"{LOCKED} ({paths.database_file}); this reply is kept and is saved once it can be." in shown(app)
    _, reply = stored(qtbot, app)
    assert reply.status is MessageStatus.STREAMING  # the store could not be told...
    # ...and reopening the conversation does not pretend ModelDesk closed while it arrived.
    conversation = pane.current_conversation
    run(qtbot, pane.new_conversation())
    run(qtbot, pane.open_conversation(conversation))
    assert "ModelDesk closed" not in shown(app)
    assert f"Not saved yet: {LOCKED}" in shown(app) and "word99" in shown(app)
    pane.transcript.retry_requested.emit()
    qtbot.waitUntil(lambda: stored(qtbot, app)[-1].status is MessageStatus.COMPLETE, timeout=WAIT_MS)
    assert stored(qtbot, app)[-1].content.strip() == text.strip()
    qtbot.waitUntil(lambda: "Not saved yet" not in shown(app), timeout=WAIT_MS)


def test_a_reply_the_store_still_refuses_at_quit_is_shown_complete_after_the_next_start(
    qtbot, start_app, paths, caplog
) -> None:
    app = start_app()
    pane = app.chat_pane
    lock = contextlib.ExitStack()
    with lock:
        with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as finished:
            click_send(qtbot, app, "keep this across a quit")
            qtbot.waitUntil(lambda: "word1 " in pane.transcript.plain_text_of_last_message(), timeout=WAIT_MS)
            lock.enter_context(sqlite_stores.write_lock_held(paths.database_file))
        assert finished.args == ["complete"]
        conversation = pane.current_conversation
        assert run(qtbot, app.aclose()) == []  # quitting while the other program holds the lock
    assert "The reply is kept in" in caplog.text and paths.unsaved_replies_file.exists()

    again = start_app()  # the lock has gone
    assert not paths.unsaved_replies_file.exists()
    run(qtbot, again.chat_pane.open_conversation(conversation))
    _, reply = stored(qtbot, again)
    assert (reply.status, reply.content.strip()) == (
        MessageStatus.COMPLETE,
        "".join(f"word{i} " for i in range(40)).strip(),
    )
    assert "ModelDesk closed" not in shown(again) and "word39" in shown(again)


def test_what_was_typed_and_not_sent_is_back_in_the_composer_after_a_quit(qtbot, start_app, paths) -> None:
    app = start_app()
    with sqlite_stores.write_lock_held(paths.database_file):  # refused, so it stays in the composer
        click_send(qtbot, app, "half a thought, « with » quotes\nand a second line")
        qtbot.waitUntil(lambda: LOCKED in shown(app), timeout=WAIT_MS)
        run(qtbot, app.aclose())
    assert paths.composer_draft_file.stat().st_mode & 0o077 == 0

    again = start_app()
    assert again.chat_pane.composer.toPlainText() == "half a thought, « with » quotes\nand a second line"
    assert not paths.composer_draft_file.exists()
    again.chat_pane.composer.clear()
    run(qtbot, again.aclose())
    assert not paths.composer_draft_file.exists()  # a blank composer keeps nothing
    assert start_app().chat_pane.composer.toPlainText() == ""


def test_a_damaged_kept_message_is_set_aside_and_the_app_starts(qtbot, start_app, paths, caplog) -> None:
    paths.composer_draft_file.parent.mkdir(parents=True, exist_ok=True)
    paths.composer_draft_file.write_bytes(b'{"version": 1, "text": ')
    app = start_app()
    assert app.chat_pane.composer.toPlainText() == ""
    [kept] = paths.composer_draft_file.parent.glob("composer-draft.json.corrupt-*")
    assert kept.read_bytes() == b'{"version": 1, "text": '
    assert "could not be read" in caplog.text


def test_a_store_locked_at_start_says_why_refuses_to_send_and_opens_on_retry(qtbot, start_app, paths) -> None:
    paths.ensure()
    run(qtbot, _history_of(paths.database_file, messages=4))
    with sqlite_stores.exclusive_mode_held(paths.database_file):
        app = start_app()
        pane = app.chat_pane
        banner = html.unescape(pane.store_banner.text())
        assert not pane.store_banner.isHidden() and f"{LOCKED} ({paths.database_file})." in banner
        assert "Retry" in banner and pane.conversations.rowCount() == 0
        click_send(qtbot, app, "typed while locked")
        qtbot.waitUntil(lambda: LOCKED in shown(app), timeout=WAIT_MS)
        assert "your message is kept" in shown(app)
        assert pane.composer.toPlainText() == "typed while locked"
        assert not run(qtbot, pane.reopen_store())  # still locked: still said
        assert not pane.store_banner.isHidden()
    retry_and_wait(qtbot, app)  # the transcript's Retry opens the store and sends
    assert pane.store_banner.isHidden() and pane.composer.toPlainText() == ""
    assert stored(qtbot, app)[0].content == "typed while locked"
    assert pane.conversations.rowCount() == 2  # a new conversation beside the old one
    run(qtbot, pane.open_conversation(pane.conversations.conversation_at(1)))
    assert "message 003" in shown(app)


def test_the_banners_retry_opens_the_store_and_shows_the_history(qtbot, start_app, paths) -> None:
    paths.ensure()
    run(qtbot, _history_of(paths.database_file, messages=4))
    with sqlite_stores.exclusive_mode_held(paths.database_file):
        app = start_app()
    pane = app.chat_pane
    pane.store_banner.linkActivated.emit("reopen")
    qtbot.waitUntil(lambda: "message 003" in shown(app), timeout=WAIT_MS)
    assert pane.store_banner.isHidden() and pane.conversations.rowCount() == 1


def test_a_damaged_page_is_found_at_start_set_aside_with_a_banner_and_recovered(qtbot, start_app, paths) -> None:
    paths.ensure()
    run(qtbot, _history_of(paths.database_file, messages=400))
    sqlite_stores.damage_page_holding(paths.database_file, b"message 200 ")
    app = start_app()
    pane = app.chat_pane
    [moved] = paths.data_dir.glob("conversations.sqlite3.corrupt-*")
    notice = (
        f"Your conversation history could not be read (a part of the file is damaged), so it was moved "
        f"to {moved} and ModelDesk started a new one."
    )
    assert notice in app.window.banner.text()  # the same banner as a file that is not a database
    assert notice in html.unescape(pane.store_banner.text()) and not pane.store_banner.isHidden()
    assert "Recover what can still be read" in pane.store_banner.text()
    assert pane.conversations.rowCount() == 0
    pane.store_banner.linkActivated.emit("recover")
    qtbot.waitUntil(lambda: pane.conversations.rowCount() == 1, timeout=WAIT_MS)
    assert pane.store_banner.text().startswith("Recovered 1 conversation and ")
    qtbot.waitUntil(lambda: pane.current_conversation is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "message 399" in shown(app), timeout=WAIT_MS)
    assert len(stored(qtbot, app)) > 350


def test_a_usage_log_locked_at_start_is_said_and_chat_still_works(qtbot, start_app, paths) -> None:
    from desktop_app.services.accounts.usage import UsageStore

    paths.ensure()
    usage_file = paths.data_dir / "usage.sqlite3"
    usage = UsageStore(usage_file)
    run(qtbot, usage.open())  # made, then left to another program
    run(qtbot, usage.close())
    with sqlite_stores.exclusive_mode_held(usage_file):
        app = start_app()
        assert f"The usage history database is locked by another program ({usage_file})." in app.window.banner.text()
        with qtbot.waitSignal(app.chat_pane.reply_finished, timeout=30_000) as finished:
            click_send(qtbot, app, "still chatting")
        assert finished.args == ["complete"]
    assert stored(qtbot, app)[-1].status is MessageStatus.COMPLETE


async def _history_of(path: Path, *, messages: int) -> None:
    store = ConversationStore(path)
    await store.open()
    conversation = await store.create_conversation(title="History")
    for i in range(messages):
        await store.add_message(
            conversation.id, role=("user", "assistant")[i % 2], content=f"message {i:03d} " + "lorem ipsum " * 25
        )
    await store.close()


def test_a_page_damaged_while_chatting_is_set_aside_the_message_kept_and_sent_into_the_new_file(
    qtbot, start_app, paths
) -> None:
    paths.ensure()
    run(qtbot, _history_of(paths.database_file, messages=400))
    app = start_app()
    pane = app.chat_pane
    qtbot.waitUntil(lambda: "message 399" in shown(app), timeout=WAIT_MS)
    sqlite_stores.damage_page_holding(paths.database_file, b"message 200 ")
    with sqlite_stores.raw(paths.database_file) as other:  # another program's write: the app reads afresh
        other.execute("UPDATE conversations SET title = 'Touched'")
    other.close()
    assert pane.select_model(app.fault_account.id, "ok")
    click_send(qtbot, app, "written after the damage")
    qtbot.waitUntil(lambda: "your message is kept" in shown(app), timeout=WAIT_MS)
    assert "(a part of the file is damaged), so it was moved to" in shown(app)
    assert pane.composer.toPlainText() == "written after the damage"
    assert "Recover what can still be read" in pane.store_banner.text()
    retry_and_wait(qtbot, app)
    user, reply = stored(qtbot, app)  # a new conversation in the new file
    assert user.content == "written after the damage" and reply.status is MessageStatus.COMPLETE
    pane.store_banner.linkActivated.emit("recover")
    qtbot.waitUntil(lambda: pane.conversations.rowCount() == 2, timeout=WAIT_MS)
    titles = {c.title for c in run(qtbot, app.store.list_conversations())}
    assert titles == {"Touched", "written after the damage"}
