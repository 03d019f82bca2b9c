"""Compare mode against the loopback fault server, through the real services and store."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication

from desktop_app.domain.conversations import MessageStatus
from desktop_app.ui.chat.compare_column import ColumnParamsDialog
from desktop_app.ui.chat.compare_summary import BEST_MARK
from tests.ui.conftest import WAIT_MS, run


def _compare(qtbot, app, account, *models: str):
    """A new comparison with one column per model."""
    pane = app.chat_pane
    app.window.show_pane("Chat")
    assert pane.select_model(account.id, models[0])
    qtbot.mouseClick(pane.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.comparing, timeout=WAIT_MS)
    view = pane.compare
    while len(view.columns) < len(models):
        qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
    for column, model in zip(view.columns, models, strict=True):
        assert column.set_target(account.id, model), f"{model} is not in the picker"
    return view


def _send(qtbot, view, text: str, timeout: int = 30_000) -> list[str]:
    view.composer.setPlainText(text)
    with qtbot.waitSignal(view.turn_finished, timeout=timeout) as blocker:
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def _lane(qtbot, app, view, lane: int):
    return run(qtbot, app.store.messages(view.conversation.id, lane=lane))


def _chat_bodies(fault_server) -> list[dict]:
    return [r.json() for r in fault_server.requests if r.path.endswith("/chat/completions")]


def test_every_column_streams_its_own_reply_with_a_summary(qtbot, modeldesk, fault_account, fault_server):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage", "ok")
    assert _send(qtbot, view, "Compare me") == ["complete", "complete", "complete"]
    for column in view.columns:
        text = column.transcript.toPlainText()
        assert "Compare me" in text and "word0 word1" in text and "tok/s" in text  # the metrics line
    summary = view.summary.summary
    assert summary.rowCount() == 3
    shown = [[summary.index(r, c).data() for c in range(summary.columnCount())] for r in range(3)]
    assert all(row[-1] == "stop" for row in shown)  # the finish reason
    assert [row[3] for row in shown][::2] == ["40", "40"] and shown[1][3].isdigit()  # no-usage: counted here
    assert any(BEST_MARK in cell for row in shown for cell in row[:2])  # the best TTFT or tok/s is marked
    for lane in (1, 2, 3):
        user, reply = _lane(qtbot, modeldesk, view, lane)
        assert (user.role, user.content, user.lane) == ("user", "Compare me", 0)  # one shared first turn
        assert reply.lane == lane and reply.status is MessageStatus.COMPLETE and reply.content.startswith("word0")
    assert sorted(b["model"] for b in _chat_bodies(fault_server)) == ["no-usage", "ok", "ok"]
    conversations = modeldesk.chat_pane.conversations
    assert conversations.row_of(view.conversation.id) == 0  # listed like a conversation...
    assert conversations.conversation_at(0).title == "Compare me"  # ...named after its first message


def test_a_first_turn_the_store_refuses_keeps_the_text_and_lists_the_comparison(
    qtbot, modeldesk, fault_account, fault_server
):
    """The comparison is stored, then its first message is refused (a trigger in the real database):
    the composer keeps the text, the notice says so, nothing is sent and the comparison is listed."""
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok")
    with sqlite3.connect(modeldesk.paths.database_file) as db:
        db.execute(
            "CREATE TRIGGER refuse_user_turns BEFORE INSERT ON messages WHEN NEW.role = 'user'"
            " BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
        )
    view.composer.setPlainText("Kept")
    qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Your message is kept." in view.notice.text(), timeout=WAIT_MS)

    assert view.composer.toPlainText() == "Kept"
    assert _chat_bodies(fault_server) == []
    conversations = modeldesk.chat_pane.conversations
    assert view.conversation is not None and conversations.row_of(view.conversation.id) == 0


def test_a_column_can_unlink_a_parameter(qtbot, modeldesk, fault_account, fault_server):
    modeldesk.chat_pane.params.temperature.setValue(1.0)
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok")
    qtbot.mouseClick(view.columns[1].params_button, Qt.MouseButton.LeftButton)
    dialog = view.findChild(ColumnParamsDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    dialog.panel.temperature.setValue(0.2)
    dialog.accept()
    assert view.columns[1].overrides == {"temperature": 0.2}
    assert "temperature" in view.columns[1].params_button.text()
    assert _send(qtbot, view, "Same model, two temperatures") == ["complete", "complete"]
    assert sorted(b["temperature"] for b in _chat_bodies(fault_server)) == [0.2, 1.0]


def test_a_failing_column_says_why_and_retries_while_the_others_finish(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "fault-401", "ok")
    assert _send(qtbot, view, "Who answers?") == ["complete", "failed", "complete"]
    failed = view.columns[1].transcript.toPlainText()
    assert "The provider rejected the key of account “Fault lab”." in failed and "Retry" in failed
    assert "word39" in view.columns[0].transcript.toPlainText()
    assert view.summary.summary.index(1, 6).data() == "error"
    assert _lane(qtbot, modeldesk, view, 2)[-1].status is MessageStatus.FAILED
    view.columns[1].set_target(fault_account.id, "ok")
    with qtbot.waitSignal(view.turn_finished, timeout=30_000) as blocker:
        view.columns[1].transcript.retry_requested.emit()
    assert blocker.args == [["complete"]]
    assert "word39" in view.columns[1].transcript.toPlainText()
    assert "rejected the key" not in view.columns[1].transcript.toPlainText()
    user, reply = _lane(qtbot, modeldesk, view, 2)  # the failed reply gave way to the new one
    assert user.content == "Who answers?" and reply.status is MessageStatus.COMPLETE


def test_a_first_turn_moves_nothing_in_the_window(qtbot, modeldesk, fault_account):
    """The first turn fixes the columns, so their Remove buttons are disabled, and nothing moves. A
    column that narrowed let the pane's splitter widen the conversation list, and that relayout
    repainted the whole window while the columns' requests were going out."""
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok", "ok", "ok")
    pane = modeldesk.chat_pane

    def layout():
        for _ in range(3):  # the relayouts asked for, and those they ask for in turn, done
            QApplication.sendPostedEvents()
        return (
            view.minimumSizeHint(),
            [c.minimumSizeHint() for c in view.columns],
            [c.stop_button.geometry() for c in view.columns],
            pane.conversations_box.geometry(),
        )

    assert all(c.remove_button.isEnabled() for c in view.columns)
    before = layout()
    assert _send(qtbot, view, "Hold still") == ["complete"] * 4
    assert not any(c.remove_button.isEnabled() for c in view.columns)
    assert layout() == before


class _Paints(QObject):
    """Notes each paint of the widgets it watches."""

    def __init__(self, widgets) -> None:
        super().__init__()
        self.painted: list[QObject] = []
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted.append(watched)
        return False


def test_a_first_turn_shows_the_stored_comparison_with_the_columns_start(qtbot, modeldesk, fault_account):
    """The comparison's row in the list and its fixed columns show with the turn: one repaint. They
    used to change while the user's message was being written, and the window repainted for them
    then, before the columns had even started."""
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok")
    paints = _Paints([modeldesk.chat_pane.conversations_box.view.viewport(), *(c.remove_button for c in view.columns)])
    QApplication.processEvents()  # what was due before Send
    paints.painted.clear()
    before_start: list[int] = []
    view.column_started.connect(lambda _lane: before_start.append(len(paints.painted)))
    assert _send(qtbot, view, "Once") == ["complete", "complete"]
    assert before_start[0] == 0
    assert paints.painted  # with the turn


def test_a_column_stops_alone_and_stop_all_stops_the_rest(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "slow", "slow", "slow")
    view.composer.setPlainText("Go slowly")
    qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: all("word3" in c.transcript.toPlainText() for c in view.columns), timeout=30_000)
    # Each column's partial text reaches the store while it streams.
    qtbot.waitUntil(lambda: "word" in _lane(qtbot, modeldesk, view, 2)[-1].content, timeout=WAIT_MS)
    with qtbot.waitSignal(view.column_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(view.columns[1].stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [2, "stopped"]
    assert view.streaming and view.columns[0].stop_button.isEnabled()
    with qtbot.waitSignal(view.turn_finished, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(view.composer, Qt.Key.Key_Escape)
    assert blocker.args == [["stopped", "stopped", "stopped"]]
    for lane in (1, 2, 3):
        reply = _lane(qtbot, modeldesk, view, lane)[-1]
        assert reply.status is MessageStatus.STOPPED and reply.content.startswith("word0")
    assert "Stopped" in view.columns[0].transcript.toPlainText()


def test_stop_all_before_the_columns_begin_ends_every_column(qtbot, modeldesk, fault_account, fault_server):
    # Every column shows its start before its task runs (one repaint before the requests go): Stop
    # arriving in between still ends each column, as a stop once it streams would.
    import asyncio

    view = _compare(qtbot, modeldesk, fault_account, "slow", "slow")
    pane = modeldesk.chat_pane
    started, finished = [], []
    pane.reply_started.connect(lambda: started.append(1))
    pane.reply_finished.connect(finished.append)
    view.column_started.connect(lambda lane: lane == 2 and asyncio.get_running_loop().call_soon(view.stop))
    assert _send(qtbot, view, "Never mind") == ["stopped", "stopped"]
    assert len(started) == 2 and finished == ["stopped", "stopped"]
    assert not view.streaming and view.send_button.isEnabled()
    for column in view.columns:
        assert column.transcript.toPlainText().rstrip().endswith("Stopped")
        assert not column.stop_button.isEnabled()
    assert [view.summary.summary.index(r, 6).data() for r in range(2)] == ["stopped", "stopped"]
    assert _chat_bodies(fault_server) == []  # nothing was sent


def test_continue_with_one_gives_every_column_the_kept_reply(qtbot, modeldesk, fault_account, fault_server):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage")
    _send(qtbot, view, "First question")
    kept = view.columns[1].last_reply
    qtbot.mouseClick(view.columns[1].continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run(qtbot, modeldesk.store.get_message(kept.id)).vote == 1, timeout=WAIT_MS)
    assert not view.columns[0].continue_button.isEnabled()
    assert _send(qtbot, view, "Second question") == ["complete", "complete"]
    for lane in (1, 2):
        path = _lane(qtbot, modeldesk, view, lane)
        assert [m.content for m in path[:3]] == ["First question", kept.content, "Second question"]
        assert path[2].parent_id == kept.id
    for body in _chat_bodies(fault_server)[-2:]:
        assert [m["content"] for m in body["messages"]] == ["First question", kept.content, "Second question"]


def test_columns_that_went_apart_each_get_their_own_turn(qtbot, modeldesk, fault_account, fault_server):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage")
    _send(qtbot, view, "First")
    _send(qtbot, view, "Second")  # no reply kept: each column goes on from its own
    for lane in (1, 2):
        path = _lane(qtbot, modeldesk, view, lane)
        assert [m.lane for m in path] == [0, lane, lane, lane]
        assert path[2].content == "Second" and path[1].model == ("ok", "no-usage")[lane - 1]


def test_keep_only_one_makes_it_an_ordinary_conversation(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage")
    _send(qtbot, view, "Pick one")
    conversation = view.conversation
    kept = view.columns[1].last_reply
    pane = modeldesk.chat_pane
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS):
        qtbot.mouseClick(view.columns[1].keep_only_button, Qt.MouseButton.LeftButton)
    assert not pane.comparing
    stored = run(qtbot, modeldesk.store.get_conversation(conversation.id))
    assert stored.compare is None
    messages = run(qtbot, modeldesk.store.messages(conversation.id))
    assert [m.content for m in messages] == ["Pick one", kept.content]
    assert "Pick one" in pane.transcript.toPlainText()
    assert pane.selected_model() == (fault_account.id, "no-usage")


def test_a_comparison_reopens_as_it_was(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "fault-404", "no-usage")
    view.columns[2].set_overrides({"temperature": 0.7})
    _send(qtbot, view, "Remember me")
    compared = view.conversation
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.new_conversation())
    assert not pane.comparing
    run(qtbot, pane.open_conversation(run(qtbot, modeldesk.store.get_conversation(compared.id))))
    assert pane.comparing
    assert [c.target() for c in view.columns] == [(fault_account.id, m) for m in ("ok", "fault-404", "no-usage")]
    assert view.columns[2].overrides == {"temperature": 0.7}
    assert "word39" in view.columns[0].transcript.toPlainText()
    assert "Model fault-404 was not found" in view.columns[1].transcript.toPlainText()
    assert view.summary.summary.index(0, 6).data() == "stop"
    assert not view.add_button.isEnabled()  # its lanes are stored: the number of columns stays


def test_blind_mode_names_the_models_once_a_reply_is_kept_and_counts_wins(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage")
    view.blind_check.setChecked(True)
    assert [c.label() for c in view.columns] == ["A", "B"]
    assert view.columns[0].isVisible() and not view.columns[0].picker.isVisible()
    _send(qtbot, view, "Which is better?")
    summary = view.summary.summary
    assert [summary.headerData(r, Qt.Orientation.Vertical) for r in range(2)] == ["A", "B"]
    assert "ok" not in view.columns[0].title.text()
    winner = view.columns[0]
    model = winner.target()[1]
    run(qtbot, view.continue_with(1))
    assert winner.label() == f"A · {model}"
    assert summary.headerData(0, Qt.Orientation.Vertical) == f"A · {model}"
    assert run(qtbot, modeldesk.store.win_counts()) == {(fault_account.id, model): 1}
    assert view.wins_label.text() == f"Wins: {model} 1"
    assert run(qtbot, modeldesk.store.get_conversation(view.conversation.id)).compare.blind


def test_nothing_is_sent_while_a_column_cannot_be(qtbot, modeldesk, fault_account, fault_server):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok")
    view.columns[1].set_target(fault_account.id, "")
    run(qtbot, view.send("Hello"))
    assert view.notice.isVisible() and view.notice.text().startswith("B")
    assert view.conversation is None and not _chat_bodies(fault_server)
    view.columns[1].set_target(fault_account.id, "ok")
    run(qtbot, view.send("   "))
    assert view.notice.text().startswith("A")  # an empty message is refused too


def test_columns_stay_between_two_and_four(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "ok")
    assert not view.columns[0].remove_button.isEnabled()
    for _ in range(3):
        qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
    assert len(view.columns) == 4 and not view.add_button.isEnabled()
    qtbot.mouseClick(view.columns[1].remove_button, Qt.MouseButton.LeftButton)
    assert [c.lane for c in view.columns] == [1, 2, 3] and view.add_button.isEnabled()
    assert view.summary.summary.rowCount() == 3


def test_summary_model(qtmodeltester):
    from desktop_app.domain.chat import ReplyMetrics
    from desktop_app.ui.chat.compare_summary import ColumnResult, CompareSummaryModel

    model = CompareSummaryModel()
    model.set_columns(["A", "B"])
    model.set_result(0, ColumnResult(ReplyMetrics(ttft_s=0.1, tokens_per_s=50, latency_s=1.0), "stop"))
    model.set_result(1, ColumnResult(ReplyMetrics(ttft_s=0.2, tokens_per_s=80, latency_s=1.0), "length"))
    qtmodeltester.check(model)
    assert model.best(0) == 0 and model.best(1) == 1 and model.best(5) is None  # a tie marks nothing


def test_the_summary_announces_a_result_only_when_it_changes(qtbot):
    # The table sizes its columns to their contents, asking every cell again on each change: four
    # columns starting a turn with "nothing yet" must not make it do that four times for nothing.
    from desktop_app.domain.chat import ReplyMetrics
    from desktop_app.ui.chat.compare_summary import ColumnResult, CompareSummaryModel

    model = CompareSummaryModel()
    model.set_columns(["A", "B"])
    changes: list[object] = []
    model.dataChanged.connect(lambda *args: changes.append(args))
    model.set_result(0, ColumnResult())
    assert changes == []
    model.set_result(0, ColumnResult(ReplyMetrics(ttft_s=0.1), "stop"))
    model.set_result(1, ColumnResult(ReplyMetrics(ttft_s=0.3), "stop"))
    assert len(changes) == 2
    assert model.index(0, 0).data() == "100 ms" + BEST_MARK and model.index(1, 0).data() == "300 ms"
    model.set_result(0, ColumnResult(ReplyMetrics(ttft_s=0.5), "stop"))  # the best mark moves
    assert model.index(0, 0).data() == "500 ms" and model.index(1, 0).data() == "300 ms" + BEST_MARK


def test_the_keys_send_and_stop_the_comparison_not_the_hidden_chat(qtbot, modeldesk, fault_account, fault_server):
    pane = modeldesk.chat_pane
    pane.composer.setPlainText("meant for the ordinary chat")
    view = _compare(qtbot, modeldesk, fault_account, "slow", "slow")
    view.columns[0].transcript.setFocus()  # Ctrl+Enter from anywhere in the comparison sends to all
    view.composer.setPlainText("To both")
    qtbot.keyClick(view.columns[0].transcript, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: all("word1" in c.transcript.toPlainText() for c in view.columns), timeout=30_000)
    with qtbot.waitSignal(view.turn_finished, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(view.columns[0].transcript, Qt.Key.Key_Escape)
    assert blocker.args == [["stopped", "stopped"]]
    assert [b["messages"][-1]["content"] for b in _chat_bodies(fault_server)] == ["To both", "To both"]
    assert pane.composer.toPlainText() == "meant for the ordinary chat"
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.new_conversation())
    assert not pane.comparing
    with qtbot.waitSignal(pane.reply_finished, timeout=WAIT_MS):
        qtbot.keyClick(pane.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # the chat's own again


def test_deleting_the_comparison_shown_leaves_an_empty_one(qtbot, modeldesk, fault_account):
    view = _compare(qtbot, modeldesk, fault_account, "ok", "no-usage")
    _send(qtbot, view, "Soon gone")
    deleted = view.conversation.id
    run(qtbot, modeldesk.chat_pane.delete_current())
    assert view.conversation is None and run(qtbot, modeldesk.store.get_conversation(deleted)) is None
    assert [c.target()[1] for c in view.columns] == ["ok", "no-usage"] and view.add_button.isEnabled()
    assert _send(qtbot, view, "A new one") == ["complete", "complete"]  # stored as a new comparison
    assert view.conversation.id != deleted
