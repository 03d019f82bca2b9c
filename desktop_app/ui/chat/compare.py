"""Compare mode: 2 to 4 columns answer the same turn at once, each streaming into its own
transcript, with a summary of their figures underneath.

Each column's stream is its own task: one that fails shows its sentence and a Retry while the
others carry on; Stop stops them all, a column's Stop only that column. A comparison is stored
like a conversation (its setup with it, each column's messages in its own lane; see
services/chat/compare.py) and reopens as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.attachments import AttachmentRefused
from desktop_app.domain.chat import ChatParams, Failed, Finished, ReasoningDelta, Started, StreamEvent, TextDelta
from desktop_app.domain.compare import MAX_COLUMNS, MIN_COLUMNS, CompareColumn, CompareSetup
from desktop_app.domain.conversations import Conversation, MessageStatus, StoredMessage
from desktop_app.domain.errors import DomainError, StorageFailed
from desktop_app.services.chat.compare import CompareTurns
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.sqlite_store import StoreClosed
from desktop_app.ui.chat.attachment_tray import AttachmentTray
from desktop_app.ui.chat.compare_column import ColumnParamsDialog, CompareColumnView
from desktop_app.ui.chat.compare_summary import ColumnResult, CompareSummary
from desktop_app.ui.chat.models import ModelPickerModel
from desktop_app.ui.common.tasks import TaskOwner

_NOTES = {MessageStatus.STOPPED: "Stopped", MessageStatus.INTERRUPTED: "Interrupted: ModelDesk closed meanwhile"}


class CompareView(QWidget):
    turn_finished = Signal(list)  # each column's outcome: "complete" | "stopped" | "failed"
    column_started = Signal(int)  # lane
    column_finished = Signal(int, str)  # lane, outcome
    conversation_created = Signal(object)  # the Conversation a first Send created
    conversation_renamed = Signal(object)  # ... named after its first message
    comparison_ended = Signal(object)  # the Conversation, now an ordinary one

    def __init__(
        self,
        *,
        chat: ChatService,
        picker_model: ModelPickerModel,
        shared_params: Callable[[], ChatParams],
        provider_of: Callable[[str], str] = lambda _target: "",
        parent: QWidget | None = None,
    ) -> None:
        """`provider_of`: the provider of an account (or pool), whose limits attached images fit."""
        super().__init__(parent)
        self._chat = chat
        self._provider_of = provider_of
        self._turns = CompareTurns(chat)
        self._picker_model = picker_model
        self._shared_params = shared_params
        self._tasks = TaskOwner("compare")
        self._turn_task: asyncio.Task | None = None
        self._column_tasks: dict[int, asyncio.Task] = {}
        self._lanes_entered: set[int] = set()  # lanes whose task has begun (see `_run_lanes`)
        self._conversation: Conversation | None = None
        self._revealed = True  # blind: the models are named once the user voted
        self.columns: list[CompareColumnView] = []

        self.add_button = QPushButton("Add column")
        self.blind_check = QCheckBox("Blind")
        self.blind_check.setToolTip("Columns are A, B, C… until you keep a reply; your picks are counted")
        self.wins_label = QLabel(wordWrap=True)
        self.wins_label.setObjectName("compareWins")
        self.wins_label.setTextFormat(Qt.TextFormat.PlainText)
        self.wins_label.setStyleSheet("QLabel#compareWins { color: palette(placeholder-text); }")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.summary = CompareSummary()
        self.notice = QLabel(wordWrap=True)
        self.notice.setObjectName("compareNotice")
        self.notice.setVisible(False)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText("Message for every column — Ctrl+Enter sends, Esc stops all")
        self.composer.setFixedHeight(80)
        self.send_button = QPushButton("Send to all")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop all")
        self.stop_button.setEnabled(False)
        # Files for every column: fitted at Send to the tightest limits among the columns' providers.
        self.attachment_tray = AttachmentTray(
            composer=self.composer, chat=chat, provider=self._first_provider, spawn=self._tasks.spawn
        )
        self.attachment_tray.refused.connect(self.show_notice)
        top = QHBoxLayout()
        top.addWidget(QLabel("Compare"))
        top.addStretch(1)
        top.addWidget(self.blind_check)
        top.addWidget(self.add_button)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.attachment_tray.attach_button)
        buttons.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.composer, 1)
        bottom.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.notice)
        layout.addWidget(self.attachment_tray)
        layout.addLayout(bottom)

        self.add_button.clicked.connect(self._on_add_clicked)
        self.blind_check.toggled.connect(self._on_blind_toggled)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.stop_button.clicked.connect(self.stop)
        for keys, slot in (
            ("Ctrl+Return", self._on_send_clicked),
            ("Ctrl+Enter", self._on_send_clicked),
            ("Esc", self.stop),
        ):
            QShortcut(QKeySequence(keys), self, slot, Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.composer.installEventFilter(self)
        self.reset([("", ""), ("", "")])

    def eventFilter(self, watched, event) -> bool:
        if watched is self.composer and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape and self.streaming:
                self.stop()
                return True
            if (
                event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier
            ):
                self._on_send_clicked()
                return True
        return super().eventFilter(watched, event)

    # --- state ---------------------------------------------------------------------------------

    @property
    def conversation(self) -> Conversation | None:
        return self._conversation

    @property
    def streaming(self) -> bool:
        return any(not task.done() for task in self._column_tasks.values())

    def setup(self) -> CompareSetup:
        return CompareSetup(columns=tuple(c.column() for c in self.columns), blind=self.blind_check.isChecked())

    def reset(self, targets: list[tuple[str, str]], *, blind: bool = False) -> None:
        """A new comparison (none stored yet) with these columns."""
        self._conversation = None
        self._build_columns([CompareColumn(account_id=a, model=m) for a, m in targets], blind=blind)

    def _build_columns(self, columns: list[CompareColumn], *, blind: bool) -> None:
        for view in self.columns:
            view.setParent(None)
            view.deleteLater()
        self.columns = []
        for column in columns:
            self._add_column(column)
        self.blind_check.blockSignals(True)
        self.blind_check.setChecked(blind)
        self.blind_check.blockSignals(False)
        self._revealed = not blind
        self._refresh_labels()
        self.summary.summary.set_columns([c.label() for c in self.columns])

    def _add_column(self, column: CompareColumn) -> CompareColumnView:
        view = CompareColumnView(lane=len(self.columns) + 1, picker_model=self._picker_model)
        if column.account_id:
            view.set_target(column.account_id, column.model)
        elif self._picker_model.rowCount():
            view.picker.setCurrentIndex(0)
        view.set_overrides(column.overrides)
        view.stop_requested.connect(lambda: self.stop_column(view.lane))
        view.remove_requested.connect(lambda: self.remove_column(view.lane))
        view.continue_requested.connect(lambda: self._tasks.spawn(self._saying_faults(self.continue_with(view.lane))))
        view.keep_only_requested.connect(lambda: self._tasks.spawn(self._saying_faults(self.keep_only(view.lane))))
        view.params_button.clicked.connect(lambda: self._open_params_dialog(view))
        view.target_changed.connect(self._refresh_labels)
        view.transcript.retry_requested.connect(lambda: self._start_column_retry(view.lane))
        view.transcript.set_attachment_files(self._chat.attachment_path)
        view.transcript.attachment_open_requested.connect(self.attachment_tray.show_attachment)
        self.columns.append(view)
        self.splitter.addWidget(view)
        self._update_column_buttons()
        return view

    def add_column(self, account_id: str = "", model: str = "") -> CompareColumnView | None:
        """Another column (up to four), before the comparison's first turn."""
        if len(self.columns) >= MAX_COLUMNS or self.streaming or self._conversation is not None:
            return None
        view = self._add_column(CompareColumn(account_id=account_id, model=model))
        view.set_blind(self.blind_check.isChecked() and not self._revealed)
        self.summary.summary.set_columns([c.label() for c in self.columns])
        return view

    def remove_column(self, lane: int) -> None:
        if len(self.columns) <= MIN_COLUMNS or self.streaming or self._conversation is not None:
            return
        view = self.columns.pop(lane - 1)
        view.setParent(None)
        view.deleteLater()
        for i, other in enumerate(self.columns, start=1):
            other.lane = i
        self._refresh_labels()
        self._update_column_buttons()
        self.summary.summary.set_columns([c.label() for c in self.columns])

    def _update_column_buttons(self) -> None:
        fixed = self._conversation is not None  # the lanes are stored: their number stays
        self.add_button.setEnabled(len(self.columns) < MAX_COLUMNS and not fixed)
        for view in self.columns:
            view.set_removable(len(self.columns) > MIN_COLUMNS and not fixed)

    def _on_add_clicked(self) -> None:
        self.add_column()

    def _on_blind_toggled(self, blind: bool) -> None:
        self._revealed = not blind
        self._refresh_labels()
        if self._conversation is not None and self._conversation.compare is not None:
            self._tasks.spawn(self._saying_faults(self._save_setup()))

    def _refresh_labels(self) -> None:
        hidden = self.blind_check.isChecked() and not self._revealed
        for view in self.columns:
            view.set_blind(hidden)
        self.summary.summary.set_labels([c.label() for c in self.columns])

    def _open_params_dialog(self, view: CompareColumnView) -> None:
        shared = self._shared_params()
        dialog = ColumnParamsDialog(shared=shared, own=view.column().params(shared), title=view.label(), parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: view.set_overrides(dialog.overrides()))
        dialog.open()

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    # --- opening -------------------------------------------------------------------------------

    async def open(self, conversation: Conversation) -> None:
        """Show a stored comparison as it was: its columns, each lane's transcript, the last figures."""
        await self.stop_and_wait()
        setup = conversation.compare
        assert setup is not None
        self._conversation = conversation
        self._build_columns(list(setup.columns), blind=setup.blind)
        self.show_notice("")
        lanes = await self._turns.lanes(conversation, len(self.columns))
        voted = False
        for view, path in zip(self.columns, lanes, strict=True):
            self._show_path(view, path)
            reply = path[-1] if path and path[-1].role == "assistant" else None
            view.last_reply = reply
            view.set_can_keep(reply is not None and reply.status is MessageStatus.COMPLETE)
            voted = voted or (reply is not None and reply.vote == 1)
            if reply is not None:
                finish = "stop" if reply.status is MessageStatus.COMPLETE else reply.status.value
                self.summary.summary.set_result(view.lane - 1, ColumnResult(reply.metrics, finish))
        self._revealed = not setup.blind or voted
        self._refresh_labels()
        self._update_column_buttons()
        await self.show_wins()

    def _show_path(self, view: CompareColumnView, path: list[StoredMessage]) -> None:
        transcript = view.transcript
        transcript.clear_transcript()
        for message in path:
            if message.role == "user":
                transcript.add_user_message(message.content, attachments=message.attachments)
                continue
            held = self._chat.unsaved(message.id) or {}
            status = held.get("status", message.status)
            note = held.get("error", message.error) if status is MessageStatus.FAILED else _NOTES.get(status, "")
            if status is MessageStatus.STREAMING:
                note = _NOTES[MessageStatus.INTERRUPTED]
            transcript.add_assistant_message(
                held.get("content", message.content), footer=message.metrics.summary(), note=note
            )

    async def show_wins(self) -> None:
        """Each model's wins (replies the user kept) across every comparison, in `wins_label`."""
        try:
            counts = await self._chat.store.win_counts()
        except (StorageFailed, StoreClosed):
            return  # the history's own banner says why
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][1]))
        self.wins_label.setText("Wins: " + ", ".join(f"{model} {n}" for (_a, model), n in ranked) if ranked else "")

    # --- sending and streaming -----------------------------------------------------------------

    def _on_send_clicked(self) -> None:
        if not self.streaming and (self._turn_task is None or self._turn_task.done()):
            self._turn_task = self._tasks.spawn(self.send(self.composer.toPlainText()), name="compare:turn")

    async def send(self, text: str) -> None:
        """Send `text` (and the files attached) to every column at once and stream their answers
        side by side.

        What cannot be sent (empty, a column without a model or key...) is refused first, naming
        the column; nothing is stored then and the composer keeps the text. A column whose model
        cannot see the images attached says so in its own transcript; the others answer."""
        shared = self._shared_params()
        attached = self.attachment_tray.attachments
        blind = 0
        for view in self.columns:
            column = view.column()
            problem = await self._chat.refusal(
                target_id=column.account_id,
                model=column.model,
                params=column.params(shared),
                text=text,
                attachments=attached,
            )
            blind += isinstance(problem, AttachmentRefused)
            if problem is not None and (not isinstance(problem, AttachmentRefused) or blind == len(self.columns)):
                self.show_notice(f"{view.label()}: " + " ".join(p for p in (problem.message, problem.action) if p))
                return
        try:
            providers = [self._provider_of(view.column().account_id) for view in self.columns]
            attachments = await self._chat.fit(attached, *providers)
            first = self._conversation is None
            conversation = await self._ensure_conversation(shared)
            try:
                paths = await self._turns.add_user_turn(
                    conversation, text, len(self.columns), first=first, attachments=attachments
                )
            finally:
                if first:  # shown with the turn, after its message is written: one repaint, not two
                    self._update_column_buttons()
                    self.conversation_created.emit(conversation)
        except StorageFailed as exc:
            self.show_notice(f"{exc.message} Your message is kept. {exc.action}".strip())
            return
        except AttachmentRefused as exc:  # a file went from disk since it was attached
            self.show_notice(exc.message)
            return
        self.show_notice("")
        if self.composer.toPlainText() == text:
            self.composer.clear()
        if self.attachment_tray.attachments == attached:
            self.attachment_tray.clear()
        if self.blind_check.isChecked():
            self._revealed = False
            self._refresh_labels()
        for view in self.columns:
            view.transcript.add_user_message(text, attachments=attachments)
            view.set_can_keep(False)
        results = await self._run_lanes([view.lane for view in self.columns], announce=False, paths=paths)
        # Named after the turn, not before it: the columns' requests do not wait for this write.
        await self._saying_faults(self._name_after(conversation, text))
        self.turn_finished.emit(results)

    def _first_provider(self) -> str:
        return self._provider_of(self.columns[0].column().account_id) if self.columns else ""

    async def _name_after(self, conversation: Conversation, text: str) -> None:
        if await self._turns.name_after(conversation, text):
            self.conversation_renamed.emit(conversation)

    async def _ensure_conversation(self, shared: ChatParams) -> Conversation:
        """The stored comparison, created at the first Send (columns shuffled when blind); `send`
        shows it (the list's new row, the columns fixed) with the turn."""
        conversation = self._conversation
        if conversation is not None:
            await self._save_setup()
            if conversation.params != shared:  # the shared parameters were changed since the last turn
                await self._chat.store.update_conversation_settings(
                    conversation.id, account_id=conversation.account_id, model=conversation.model, params=shared
                )
                conversation.params = shared
            return conversation
        if self.blind_check.isChecked():
            columns = [view.column() for view in self.columns]
            random.shuffle(columns)  # so that A is not simply the first one picked
            for view, column in zip(self.columns, columns, strict=True):
                view.set_target(column.account_id, column.model)
                view.set_overrides(column.overrides)
        first = self.columns[0].column()
        # Stored with its setup in one write: the first turn's requests wait for every write before them.
        conversation = await self._chat.store.create_conversation(
            title=DEFAULT_TITLE, account_id=first.account_id, model=first.model, params=shared, compare=self.setup()
        )
        self._conversation = conversation
        return conversation

    async def _save_setup(self) -> None:
        if self._conversation is not None:
            await self._turns.set_setup(self._conversation, self.setup())

    async def _run_lanes(
        self, lanes: list[int], *, announce: bool = True, paths: list[list[StoredMessage]] | None = None
    ) -> list[str]:
        """Stream `lanes` at once; `paths`: each column's stored history, when known (a first turn)."""
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        # Every column shows its start now, in one go: one paint of the parts that changed.
        for lane in lanes:
            self._show_lane_started(lane)
        tasks = [self._start_lane(lane, paths[lane - 1] if paths else None) for lane in lanes]
        try:
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            for lane in lanes:
                if lane not in self._lanes_entered:  # stopped before its task ran a line
                    self.columns[lane - 1].transcript.finish_assistant_message(note="Stopped")
                    self.summary.summary.set_result(lane - 1, ColumnResult(None, "stopped"))
                    self._show_lane_ended(lane, "stopped")
            self._lanes_entered.difference_update(lanes)
            if not self.streaming:
                self.send_button.setEnabled(True)
                self.stop_button.setEnabled(False)
        results = [
            o if isinstance(o, str) else "stopped" if isinstance(o, asyncio.CancelledError) else "failed"
            for o in outcomes
        ]
        if announce:
            self.turn_finished.emit(results)
        return results

    def _start_lane(self, lane: int, path: list[StoredMessage] | None = None) -> asyncio.Task:
        task = self._tasks.spawn(self._stream_lane(lane, path), name=f"compare:lane:{lane}")
        self._column_tasks[lane] = task
        return task

    def _show_lane_started(self, lane: int) -> None:
        view = self.columns[lane - 1]
        view.set_streaming(True)
        view.transcript.begin_assistant_message()
        self.summary.summary.set_result(lane - 1, ColumnResult())
        self.column_started.emit(lane)

    def _show_lane_ended(self, lane: int, outcome: str) -> None:
        self.columns[lane - 1].set_streaming(False)
        self.column_finished.emit(lane, outcome)

    async def _stream_lane(self, lane: int, path: list[StoredMessage] | None = None) -> str:
        """One column's turn, its start already shown (`_show_lane_started`)."""
        self._lanes_entered.add(lane)
        view = self.columns[lane - 1]
        conversation = self._conversation
        assert conversation is not None
        column = view.column()
        transcript = view.transcript
        outcome = "stopped"
        events: AsyncIterator[StreamEvent] = self._chat.answer_lane(conversation, lane, column, path=path)
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    if isinstance(event, TextDelta):
                        transcript.append_text(event.text)
                    elif isinstance(event, ReasoningDelta):
                        transcript.append_reasoning(event.text)
                    elif isinstance(event, Started) and self._revealed:
                        transcript.set_live_request(event.request)
                    elif isinstance(event, Finished):
                        outcome = "complete"
                        transcript.finish_assistant_message(footer=event.metrics.summary())
                        self.summary.summary.set_result(lane - 1, ColumnResult(event.metrics, event.finish_reason))
                    elif isinstance(event, Failed):
                        outcome = "failed"
                        self._show_column_failure(view, event.error, event.metrics.summary())
                        self.summary.summary.set_result(lane - 1, ColumnResult(event.metrics, "error"))
        except asyncio.CancelledError:
            transcript.finish_assistant_message(note="Stopped")
            self.summary.summary.set_result(lane - 1, ColumnResult(None, "stopped"))
            raise
        except DomainError as exc:  # StorageFailed included: the reply could not even be started
            outcome = "failed"
            self._show_column_failure(view, exc, "")
            self.summary.summary.set_result(lane - 1, ColumnResult(None, "error"))
        finally:
            self._show_lane_ended(lane, outcome)
        if outcome == "stopped":
            transcript.finish_assistant_message(note="Stopped")
        await self._remember_reply(view)
        return outcome

    def _show_column_failure(self, view: CompareColumnView, error: DomainError, footer: str) -> None:
        view.transcript.finish_assistant_message(footer=footer)
        view.transcript.show_error(error.message, action=error.action, retry=True)

    async def _remember_reply(self, view: CompareColumnView) -> None:
        assert self._conversation is not None
        try:
            path = await self._chat.store.messages(self._conversation.id, lane=view.lane)
        except StorageFailed:
            path = []
        reply = path[-1] if path and path[-1].role == "assistant" else None
        view.last_reply = reply
        view.set_can_keep(reply is not None and reply.status is MessageStatus.COMPLETE)

    def _start_column_retry(self, lane: int) -> None:
        if lane not in self._column_tasks or self._column_tasks[lane].done():
            self._tasks.spawn(self.retry_column(lane), name=f"compare:retry:{lane}")

    async def retry_column(self, lane: int) -> str:
        """Answer the turn again in this column only (its failed or stopped reply gives way)."""
        view = self.columns[lane - 1]
        conversation = self._conversation
        if conversation is None:
            return "stopped"
        try:
            await self._turns.discard_unfinished(conversation, lane)
            path = await self._chat.store.messages(conversation.id, lane=lane)
        except StorageFailed as exc:
            self.show_notice(f"{exc.message} {exc.action}".strip())
            return "failed"
        self._show_path(view, path)
        results = await self._run_lanes([lane])
        return results[0]

    def stop(self) -> None:
        """Stop every column."""
        for task in self._column_tasks.values():
            task.cancel()

    def stop_column(self, lane: int) -> None:
        task = self._column_tasks.get(lane)
        if task is not None:
            task.cancel()

    async def stop_and_wait(self) -> None:
        tasks = [t for t in self._column_tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._turn_task is not None and not self._turn_task.done():
            await asyncio.gather(self._turn_task, return_exceptions=True)

    # --- keeping a reply -----------------------------------------------------------------------

    async def continue_with(self, lane: int) -> None:
        """Keep this column's reply: the vote is stored, every column goes on from it."""
        view = self.columns[lane - 1]
        if view.last_reply is None or self._conversation is None or self.streaming:
            return
        await self._turns.pick(view.last_reply)
        self._revealed = True
        self._refresh_labels()
        for other in self.columns:
            other.set_can_keep(False)
        self.show_notice(f"Kept the reply of {view.label()}: every column goes on from it.")
        await self.show_wins()

    async def keep_only(self, lane: int) -> None:
        """Keep this column's reply and end the comparison: an ordinary conversation from here."""
        view = self.columns[lane - 1]
        conversation = self._conversation
        if view.last_reply is None or conversation is None or self.streaming:
            return
        await self._turns.keep_only(conversation, view.last_reply)
        self._conversation = None
        await self.show_wins()
        self.comparison_ended.emit(conversation)

    async def _saying_faults(self, coro) -> None:
        try:
            await coro
        except StorageFailed as exc:
            self.show_notice(f"{exc.message} {exc.action}".strip())

    async def aclose(self) -> None:
        await self.stop_and_wait()
        await self._tasks.aclose()
