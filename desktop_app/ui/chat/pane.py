"""The chat playground: conversations, model picker, parameters, transcript and composer.

A storage fault never eats what was typed: the composer keeps a message the store refused, a reply
it refused is held by the chat service, and the transcript says why with a Retry that redoes
exactly what failed (the send, the save, or the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.attachments import Attachment, AttachmentRefused
from desktop_app.domain.chat import (
    AttemptFailed,
    Failed,
    Finished,
    Notice,
    ReasoningDelta,
    Started,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.conversations import Conversation, MessageStatus
from desktop_app.domain.errors import DomainError, StorageFailed
from desktop_app.domain.prompt_cache import takes_cache_control
from desktop_app.domain.routes import is_route_id
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tools import ToolCallDelta, ToolCalls
from desktop_app.domain.usage import BudgetExceeded
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.chat.context import ContextCounter
from desktop_app.services.chat.presets import PresetStore
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.ui.chat.attachment_tray import AttachmentTray
from desktop_app.ui.chat.compare_mode import CompareModeMixin
from desktop_app.ui.chat.context_gauge import ContextGauge
from desktop_app.ui.chat.conversation_actions import ConversationActionsMixin
from desktop_app.ui.chat.conversations_box import ConversationsBox
from desktop_app.ui.chat.library_actions import LibraryActionsMixin
from desktop_app.ui.chat.models import ConversationListModel, ModelPickerModel
from desktop_app.ui.chat.params import ParamsPanel
from desktop_app.ui.chat.presets import PresetsBox, params_column
from desktop_app.ui.chat.request_code import RequestCodeDialog
from desktop_app.ui.chat.store_faults import StoreFaultsMixin
from desktop_app.ui.chat.stored_transcript import StoredTranscript
from desktop_app.ui.chat.tool_cards import ToolCallsPanel, send_tool_results
from desktop_app.ui.chat.transcript import TranscriptView
from desktop_app.ui.chat.turn_actions import TurnActions
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner

log = logging.getLogger(__name__)
LOADING_NOTICE_AFTER_MS = 1200


class ChatPane(ConversationActionsMixin, LibraryActionsMixin, StoreFaultsMixin, CompareModeMixin, QWidget):
    """Over 30 methods on purpose: send, retry, stream and the storage faults share one reply's state."""

    reply_started = Signal()
    reply_finished = Signal(str)  # "complete" | "stopped" | "failed"
    conversation_opened = Signal(int)  # opened, or new
    models_refreshed = Signal()
    accounts_requested = Signal()  # the empty state's button: go and add an account
    typing_started = Signal()  # once, at the first keystroke: what a request needs can start loading

    def __init__(
        self, *, chat: ChatService, accounts: AccountService, presets: PresetStore, context: ContextCounter, parent=None
    ) -> None:
        super().__init__(parent)
        self._chat = chat
        self._accounts = accounts
        self._tasks = TaskOwner("chat")
        self._reply_task: asyncio.Task | None = None
        self._current: Conversation | None = None
        self._retry_kind = "answer"  # what the transcript's Retry redoes: "answer", "send" or "save"
        self._settings_unsaved = False
        self._storage_fault_shown = False  # the transcript shows a storage fault's sentence
        self._sending = ""  # the message whose answer is streaming, while send() streams it

        # Left: conversations.
        self.conversations = ConversationListModel(
            page=chat.store.conversation_page, spawn=self._tasks.spawn, parent=self
        )
        self.conversations_box = ConversationsBox(model=self.conversations, search=self._search_panel())

        # Centre: model picker, transcript, notice, composer.
        self.picker_model = ModelPickerModel(accounts=accounts, parent=self)
        self.model_picker = QComboBox()
        self.model_picker.setModel(self.picker_model)
        self.model_picker.setMinimumContentsLength(28)
        self.model_picker.setPlaceholderText("Add an account, then pick a model")
        self.refresh_button = QPushButton("Refresh models")
        self.model_info = QLabel()
        self.model_info.setObjectName("modelInfo")
        self.model_info.setStyleSheet("QLabel#modelInfo { color: palette(placeholder-text); }")
        self.transcript = TranscriptView()
        self.stored = StoredTranscript(
            transcript=self.transcript, held=chat.unsaved, unsaved_problem=lambda: chat.unsaved_problem
        )
        self.turns = TurnActions(self)  # regenerate, edit, delete, branch, versions
        # Why the conversation history cannot be used (or was set aside), with what to do about it.
        self.store_banner = QLabel(objectName="storeBanner")
        self.store_banner.setWordWrap(True)
        self.store_banner.setTextFormat(Qt.TextFormat.RichText)
        self.store_banner.linkActivated.connect(self._on_store_banner_link)
        self.store_banner.setVisible(False)
        self.store_banner.setStyleSheet(
            "QLabel#storeBanner { background: palette(alternate-base); border: 1px solid palette(mid);"
            " border-radius: 4px; padding: 6px; }"
        )
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.linkActivated.connect(self._on_notice_link)
        self.notice.setVisible(False)
        self.notice.setObjectName("chatNotice")
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText("Message — Ctrl+Enter sends, Esc stops")
        self.composer.setFixedHeight(96)
        self.attachment_tray = AttachmentTray(
            composer=self.composer, chat=chat, provider=self._selected_provider, spawn=self._tasks.spawn
        )
        self.attachment_tray.refused.connect(self.show_notice)
        self.transcript.set_attachment_files(chat.attachment_path)
        self.transcript.attachment_open_requested.connect(self.attachment_tray.show_attachment)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_picker, 1)
        top.addWidget(self.refresh_button)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.attachment_tray.attach_button)
        buttons.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.composer, 1)
        bottom.addLayout(buttons)
        self.empty_state = QWidget(objectName="chatEmptyState")
        empty_layout = QHBoxLayout(self.empty_state)
        empty_layout.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel("No models to chat with yet: add an account for a cloud provider or a local server.")
        self.empty_label.setWordWrap(True)
        self.empty_button = QPushButton("Add an account")
        self.empty_button.clicked.connect(self.accounts_requested)
        empty_layout.addWidget(self.empty_label, 1)
        empty_layout.addWidget(self.empty_button)
        centre = QVBoxLayout()
        centre.addWidget(self.empty_state)
        centre.addLayout(top)
        centre.addWidget(self.model_info)
        centre.addWidget(self.store_banner)
        centre.addWidget(self._find_bar())
        centre.addWidget(self.transcript, 1)
        self.tool_calls = ToolCallsPanel()  # the last reply's calls, waiting for the user's results
        centre.addWidget(self.tool_calls)
        centre.addWidget(self.turns.edit_box)
        centre.addWidget(self.notice)
        centre.addWidget(self.attachment_tray)
        centre.addLayout(bottom)
        centre_widget = QWidget()
        centre_widget.setLayout(centre)

        # Right: parameters.
        self.params = ParamsPanel()
        self.params.setMinimumWidth(240)
        self.presets_box = PresetsBox(presets=presets, panel=self.params, spawn=self._tasks.spawn)
        self.context_gauge = ContextGauge(
            counter=context,
            accounts=accounts,
            composer=self.composer,
            panel=self.params,
            target=self.selected_model,
            conversation=lambda: self._current,
            spawn=self._tasks.spawn,
            refresh_on=(self.model_picker.currentIndexChanged, self.conversation_opened, self.reply_finished),
            busy=lambda: self.streaming or self.compare.streaming,  # a comparison's columns too
        )
        centre.addWidget(self.context_gauge)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.conversations_box)
        splitter.addWidget(self._with_compare_mode(centre_widget))  # or the compare view
        splitter.addWidget(params_column(self.presets_box, self.params))
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([200, 640, 260])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        self.send_button.clicked.connect(self._on_send_clicked)
        self.stop_button.clicked.connect(self.stop)
        for keys, slot in (
            ("Ctrl+Return", self._on_send_clicked),
            ("Ctrl+Enter", self._on_send_clicked),
            ("Esc", self.stop),
        ):
            shortcut = QShortcut(QKeySequence(keys), self, activated=slot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        # The composer handles its own keys too, so they work even before the window is active.
        self.composer.installEventFilter(self)
        self.composer.textChanged.connect(self._on_first_typing)
        self.conversations_box.new_button.clicked.connect(self._on_new_clicked)
        self.conversations_box.rename_button.clicked.connect(self._on_rename_clicked)
        self.conversations_box.delete_button.clicked.connect(self._on_delete_clicked)
        self.refresh_button.clicked.connect(lambda: self._tasks.spawn(self.refresh_models()))
        self.conversations_box.view.selectionModel().currentChanged.connect(self._on_conversation_selected)
        self.conversations.rowsInserted.connect(self._on_rows_listed)
        self.model_picker.currentIndexChanged.connect(lambda _row: self._tasks.spawn(self.show_model_info()))
        self.transcript.retry_requested.connect(lambda: self._start_reply(self.retry()))
        self.tool_calls.results_ready.connect(lambda results: self._start_reply(send_tool_results(self, results)))
        self.transcript.code_view_requested.connect(self._on_transcript_code_view_requested)
        follow(self, accounts.on_models_changed, self._reload_picker)
        follow(self, accounts.on_accounts_changed, self._reload_picker)
        self.empty_state.setVisible(self.picker_model.rowCount() == 0)

    def _on_first_typing(self) -> None:
        self.composer.textChanged.disconnect(self._on_first_typing)
        self.typing_started.emit()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.composer and event.type() == QEvent.Type.KeyPress:
            key, mods = event.key(), event.modifiers()
            if key == Qt.Key.Key_Escape and self.streaming:
                self.stop()
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and mods & Qt.KeyboardModifier.ControlModifier:
                self._on_send_clicked()
                return True
        return super().eventFilter(watched, event)

    # --- state ---------------------------------------------------------------------------------

    @property
    def current_conversation(self) -> Conversation | None:
        return self._current

    @property
    def streaming(self) -> bool:
        return self._reply_task is not None and not self._reply_task.done()

    def _reload_picker(self) -> None:
        selected = self.selected_model()
        self.picker_model.reload()
        self.empty_state.setVisible(self.picker_model.rowCount() == 0)
        if selected is not None:
            self.select_model(*selected)
        elif self.model_picker.count() and self.model_picker.currentIndex() < 0:
            self.model_picker.setCurrentIndex(0)

    def selected_model(self) -> tuple[str, str] | None:
        entry = self.picker_model.entry_at(self.model_picker.currentIndex())
        return None if entry is None else (entry.account_id, entry.model)

    async def show_model_info(self) -> None:
        """The picked model's context, limits, capabilities and price, when LiteLLM knows them."""
        selected = self.selected_model()
        if selected is None:
            self.model_info.setText("")
            return
        if is_route_id(selected[0]):  # which model answers depends on which target can
            route = self._accounts.route(selected[0])
            self.model_info.setText(route.summary(self._target_label) if route else "")
            self.params.set_shown(None)  # every row: each target drops what it does not take
            self.params.set_caching_available(False)
            return
        info = await self._accounts.model_info(*selected)
        if self.selected_model() == selected:  # the pick may have changed meanwhile
            self.model_info.setText(info.summary())
            self.params.set_shown(info.params)
            target = self._target(selected[0])
            self.params.set_caching_available(takes_cache_control(target.provider_id if target else ""))

    def _target(self, target_id: str):
        """The account or pool `target_id` names, or None."""
        return self._accounts.find(target_id) or self._accounts.pool(target_id)

    def _target_label(self, target_id: str) -> str:
        target = self._target(target_id)
        return target.label if target else ""

    def select_model(self, account_id: str, model: str) -> bool:
        row = self.picker_model.row_of(account_id, model)
        if row >= 0:
            self.model_picker.setCurrentIndex(row)
        return row >= 0

    def show_notice(self, text: str, *, link: tuple[str, str] | None = None) -> None:
        """A line above the composer; `link` is (href, label) for one action, e.g. "Send anyway"."""
        body = html.escape(text)
        if link is not None:
            body += f' <a href="{link[0]}">{html.escape(link[1])}</a>'
        self.notice.setText(body)
        self.notice.setVisible(bool(text))

    def _add_notice(self, text: str) -> None:
        current = "" if self.notice.isHidden() else self.notice.text()
        body = html.escape(text)
        self.notice.setText(f"{current}<br>{body}" if current else body)
        self.notice.setVisible(True)

    def _on_notice_link(self, href: str) -> None:
        if href == "override":
            self._start_reply(self.retry(override_budget=True))

    # --- conversations ------------------------------------------------------------------------

    async def open_conversation(self, conversation: Conversation) -> None:
        await self.stop_and_wait()
        await self._remember_settings()
        self._current = conversation
        self.params.set_params(conversation.params)
        if conversation.account_id:
            self.select_model(conversation.account_id, conversation.model)
        if not await self._show_compare(conversation):
            await self._show_stored(conversation)
        self.conversation_opened.emit(conversation.id)

    async def _show_stored(self, conversation: Conversation) -> None:
        """The transcript as stored, with any reply the store has not taken yet as it is held."""
        self.transcript.clear_transcript()
        self._storage_fault_shown = False
        try:
            messages = await self._chat.store.messages(conversation.id)
        except StorageFailed as exc:
            self._on_storage_failed(exc, retry="answer")
            return
        self.tool_calls.show_pending(messages, conversation.params.tools)
        self.stored.show(messages)
        if messages and messages[-1].status is MessageStatus.INTERRUPTED:
            # Retry answers the last question again; an earlier interrupted reply stays as it is.
            self.transcript.show_error("This reply was cut off.", retry=True)

    async def new_conversation(self) -> Conversation:
        await self.stop_and_wait()
        await self._remember_settings()
        selected = self.selected_model() or ("", "")
        conversation = await self._chat.store.create_conversation(
            title=DEFAULT_TITLE, account_id=selected[0], model=selected[1], params=self.params.params()
        )
        self._current = conversation
        self.conversations.upsert_front(conversation)
        self.conversations_box.view.setCurrentIndex(self.conversations.index(0))
        self.transcript.clear_transcript()
        self.tool_calls.clear()
        await self._show_compare(conversation)  # an ordinary one: the transcript comes back
        self.conversation_opened.emit(conversation.id)
        return conversation

    async def _remember_settings(self) -> None:
        """Store the picker and panel values into the conversation being left or sent."""
        if self._current is None:
            return
        selected = self.selected_model()
        account_id, model = selected if selected else (self._current.account_id, self._current.model)
        params = self.params.params()
        if (account_id, model, params) == (
            self._current.account_id,
            self._current.model,
            self._current.params,
        ) and not self._settings_unsaved:
            return
        self._current.account_id, self._current.model, self._current.params = account_id, model, params
        try:
            await self._chat.store.update_conversation_settings(
                self._current.id, account_id=account_id, model=model, params=params
            )
        except StorageFailed as exc:  # kept in memory, written by the next call
            self._settings_unsaved = True
            log.warning("conversation settings not saved yet: %s", exc.message)
        else:
            self._settings_unsaved = False

    # --- sending, streaming, stopping ---------------------------------------------------------

    def _on_send_clicked(self) -> None:
        if not self.streaming:
            self.context_gauge.confirm_then(lambda: self._start_reply(self.send(self.composer.toPlainText())))

    def _start_reply(self, coro) -> None:
        if self.streaming:
            coro.close()
            return
        self._reply_task = self._tasks.spawn(coro, name="chat:reply")

    async def send(self, text: str) -> None:
        """Send `text` in the current conversation (a new one if none) and stream the answer.

        The composer is cleared only once the store has the message: on a storage fault the text
        stays there and the transcript says why, with a Retry that sends it again. What cannot be
        sent (empty, no model, no key...) is refused first: nothing is stored or sent."""
        attached = self.attachment_tray.attachments
        if (problem := await self._refusal(text, attached)) is not None:
            self._show_refusal(problem)
            return
        store = self._chat.store
        if not store.is_open and store.problem is not None:
            self._on_storage_failed(store.problem.kept("your message is kept"), retry="send")
            return
        try:  # an image attached for another provider than the one picked now is fitted to it
            attachments = await self._chat.fit(attached, self._selected_provider())
            if self._current is None:
                await self.new_conversation()
            await self._remember_settings()
            assert self._current is not None
            conversation = self._current
            await self._chat.add_user_message(conversation, text, attachments)
        except StorageFailed as exc:
            self._on_storage_failed(exc.kept("your message is kept"), retry="send")
            return
        except AttachmentRefused as exc:  # a file went from disk since it was attached
            self._show_refusal(exc)
            return
        self._retry_kind = "answer"
        if self.composer.toPlainText() == text:
            self.composer.clear()
        if self.attachment_tray.attachments == attached:
            self.attachment_tray.clear()
        if self._storage_fault_shown:
            await self._show_stored(conversation)  # the fault's sentence goes, the message shows
        else:
            self.transcript.add_user_message(text, attachments=attachments)
        self._sending = text
        try:
            await self._stream(self._chat.answer(conversation))
        finally:
            self._sending = ""
        if self._current is conversation:
            self.conversations.upsert_front(conversation)

    async def retry(self, *, override_budget: bool = False) -> None:
        kind, self._retry_kind = self._retry_kind, "answer"
        if kind == "send":
            # Reopened here without opening a conversation (that would stop this very task): the
            # message was typed with none open, so it starts a new one.
            if not self._chat.store.is_open and not await self.reopen_store(select=False):
                self._retry_kind = "send"
                return
            text = self.composer.toPlainText()
            if text.strip():
                await self.send(text)
            return
        if self._current is None:
            return
        conversation = self._current
        try:
            if kind == "save":
                await self._chat.flush_unsaved()
                await self._show_stored(conversation)
                return
            await self._remember_settings()
            if (problem := await self._refusal(None)) is not None:
                self._retry_kind = kind
                self._show_refusal(problem)
                return
            await self._chat.discard_unfinished_answer(conversation)
        except StorageFailed as exc:
            self._on_storage_failed(exc, retry=kind)
            return
        await self.open_conversation(conversation)
        await self._stream(self._chat.answer(conversation, override_budget=override_budget))

    async def _refusal(self, text: str | None, attachments: tuple[Attachment, ...] = ()) -> DomainError | None:
        """Why what is in the picker, the parameters and (with `text`) the composer cannot be sent."""
        target = self.selected_model()
        if target is None and self._current is not None:
            target = (self._current.account_id, self._current.model)
        account_id, model = target or ("", "")
        return await self._chat.refusal(
            target_id=account_id, model=model, params=self.params.params(), text=text, attachments=attachments
        )

    def _selected_provider(self) -> str:
        account = self._accounts.find((self.selected_model() or ("", ""))[0])
        return account.provider_id if account is not None else ""

    def _show_refusal(self, problem: DomainError) -> None:
        """Say above the composer why nothing was sent (what was typed stays); a schema the parameters
        panel cannot read is also named beside its field."""
        self.params.check_schema()
        self.show_notice(" ".join(part for part in (problem.message, problem.action) if part))

    async def _stream(self, events: AsyncIterator[StreamEvent]) -> None:
        self._set_streaming(True)
        self.show_notice("")
        self.transcript.begin_assistant_message()
        self.tool_calls.clear()
        outcome = "stopped"
        # A local server loads a model on first use (Ollama, llama-server's router): when the first
        # token is slow to come, say so, and take the line away as soon as text arrives.
        loading = QTimer(self, singleShot=True, interval=LOADING_NOTICE_AFTER_MS)
        loading.timeout.connect(self._show_loading_notice)
        got_text = False
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, Started):
                        self.transcript.set_live_request(event.request)
                    if isinstance(event, TextDelta):
                        if not got_text:
                            got_text = True
                            loading.stop()
                            self._clear_loading_notice()
                        self.transcript.append_text(event.text)
                    elif isinstance(event, ReasoningDelta):
                        self.transcript.append_reasoning(event.text)
                    elif isinstance(event, (ToolCallDelta, ToolCalls)):
                        tools = self._current.params.tools if self._current else ()
                        self.tool_calls.on_event(event, tools, self.transcript.append_text)
                    elif isinstance(event, Started) and self._selected_is_local():
                        loading.start()
                        if event.dropped_params:
                            self._add_notice(
                                f"Left out {', '.join(event.dropped_params)}: {event.model} does not take "
                                f"{'it' if len(event.dropped_params) == 1 else 'them'}."
                            )
                    elif isinstance(event, Started) and event.dropped_params:
                        self._add_notice(
                            f"Left out {', '.join(event.dropped_params)}: {event.model} does not take "
                            f"{'it' if len(event.dropped_params) == 1 else 'them'}."
                        )
                    elif isinstance(event, AttemptFailed):
                        self._add_notice(
                            f"“{event.account_label}” could not answer ({event.error.message}) {event.next_step}"
                        )
                    elif isinstance(event, Notice):
                        self._add_notice(event.text)
                    elif isinstance(event, Finished):
                        outcome = "complete"
                        metrics = event.metrics
                        self.transcript.finish_assistant_message(
                            footer=metrics.summary(), thinking=metrics.thinking_summary()
                        )
                    elif isinstance(event, Failed):
                        outcome = "failed"
                        self._show_failure(event.error, event.metrics.summary())
        except asyncio.CancelledError:
            self.transcript.finish_assistant_message(note="Stopped")
            raise
        except StorageFailed as exc:  # the reply could not even be started
            outcome = "failed"
            self.transcript.finish_assistant_message()
            if exc.cause == "damaged" and self._sending and self._chat.store.damaged_copy is not None:
                # The question went into the file just set aside: it is sent again into the new one.
                if not self.composer.toPlainText():
                    self.composer.setPlainText(self._sending)
                self._on_storage_failed(exc.kept("your message is kept"), retry="send")
            else:
                self._on_storage_failed(exc, retry="answer")
        except DomainError as exc:
            outcome = "failed"
            self._show_failure(exc, "")
        finally:
            loading.stop()
            loading.deleteLater()
            self._clear_loading_notice()
            if (problem := self._chat.unsaved_problem) is not None and outcome != "failed":
                self.transcript.finish_assistant_message(note="Stopped" if outcome == "stopped" else "")
                self._on_storage_failed(problem.kept("this reply is kept and is saved once it can be"), retry="save")
            self._set_streaming(False)
            self.reply_finished.emit(outcome)
        if outcome == "stopped":
            self.transcript.finish_assistant_message(note="Stopped")

    def _on_transcript_code_view_requested(self, request: SentRequest) -> None:
        dialog = RequestCodeDialog(request, self, attachments_dir=self._chat.attachments_dir)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _selected_is_local(self) -> bool:
        conversation = self._current
        account = self._accounts.find(conversation.account_id) if conversation else None
        return account is not None and account.provider.is_local

    def _show_loading_notice(self) -> None:
        conversation = self._current
        if conversation is None:
            return
        label = self._accounts.find(conversation.account_id)
        where = f" on {label.label}" if label else ""
        self._loading_text = f"Loading {conversation.model}{where}: a local server loads a model on first use…"
        self._add_notice(self._loading_text)

    def _clear_loading_notice(self) -> None:
        text = getattr(self, "_loading_text", "")
        if text and html.escape(text) in self.notice.text():
            rest = [line for line in self.notice.text().split("<br>") if line != html.escape(text)]
            self.notice.setText("<br>".join(rest))
            self.notice.setVisible(bool(rest))
        self._loading_text = ""

    def _show_failure(self, error: DomainError, footer: str) -> None:
        self.transcript.finish_assistant_message(footer=footer)
        self.transcript.show_error(error.message, action=error.action, retry=True)
        if isinstance(error, BudgetExceeded):
            self.show_notice(error.message, link=("override", "Send anyway"))

    def _set_streaming(self, streaming: bool) -> None:
        self.send_button.setEnabled(not streaming)
        self.stop_button.setEnabled(streaming)
        if streaming:
            self.reply_started.emit()

    def stop(self) -> None:
        if self.streaming:
            assert self._reply_task is not None
            self._reply_task.cancel()

    async def stop_and_wait(self) -> None:
        await self.compare.stop_and_wait()
        task = self._reply_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- models -------------------------------------------------------------------------------

    async def refresh_models(self) -> None:
        errors = []
        for account in self._accounts.accounts:
            try:
                await self._accounts.refresh_models(account.id)
            except DomainError as exc:
                errors.append(f"{account.label}: {exc.message}")
            except Exception:  # one account's failure is its own sentence, never the others' silence
                log.exception("listing the models of account %s failed", account.id)
                errors.append(f"{account.label}: its models could not be listed (the log has the details).")
            else:
                if notice := self._accounts.model_notice(account.id):
                    errors.append(f"{account.label}: {notice}")
        self._reload_picker()
        self.show_notice(" ".join(errors))
        self.models_refreshed.emit()

    async def restore_draft(self) -> None:
        """At start: what was typed and not sent when ModelDesk last quit goes back in the composer."""
        draft = await self._chat.take_draft()
        if draft and not self.composer.toPlainText():
            self.composer.setPlainText(draft)

    async def aclose(self) -> None:
        self.context_gauge.stop()
        self.turns.close()
        await self.stop_and_wait()
        try:
            await self._chat.save_draft(self.composer.toPlainText())
        except OSError as exc:
            log.error("quitting: the message in the composer could not be kept: %s", exc)
        try:
            await self._remember_settings()
            await self._chat.flush_unsaved()
        except StorageFailed as exc:
            try:
                spilled = await self._chat.spill_unsaved()
            except OSError as error:
                log.error("quitting: a reply the history database refused (%s) is lost: %s", exc.message, error)
            else:
                if spilled is not None:
                    log.warning("quitting: %s The reply is kept in %s until the next start.", exc.message, spilled)
                else:
                    log.warning("closing with unsaved changes to the conversation history: %s", exc.message)
        await self.compare.aclose()
        await self._tasks.aclose()
