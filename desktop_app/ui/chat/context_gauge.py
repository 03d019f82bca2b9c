"""The context gauge under the composer: "1,234 / 8,192 tokens", the conversation and the draft
against the model's context window, with a warning tone (and a question at Send) when over it.

Counting runs off the GUI thread (services/chat/context.py), 300 ms after the last keystroke, and a
newer count cancels an older one. Where the window is not known, the gauge shows the count alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, QTimer, SignalInstance
from PySide6.QtWidgets import QLabel, QMessageBox, QPlainTextEdit, QWidget

from desktop_app.domain.accounts import Account
from desktop_app.domain.conversations import Conversation
from desktop_app.domain.errors import DomainError
from desktop_app.domain.pools import is_pool_id
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.chat.context import ContextCounter
from desktop_app.ui.chat.params import ParamsPanel
from desktop_app.ui.theme import set_tone

log = logging.getLogger(__name__)
DEBOUNCE_MS = 300
Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]


class ContextGauge(QLabel):
    def __init__(
        self,
        *,
        counter: ContextCounter,
        accounts: AccountService,
        composer: QPlainTextEdit,
        panel: ParamsPanel,
        target: Callable[[], tuple[str, str] | None],
        conversation: Callable[[], Conversation | None],
        spawn: Spawn,
        refresh_on: tuple[SignalInstance, ...] = (),
        busy: Callable[[], bool] = lambda: False,
        parent: QWidget | None = None,
    ) -> None:
        """`busy`: a reply is on its way; no count runs then (the tokenizer would compete with the
        request for the interpreter), and `refresh_on` should hold the signal of its end."""
        super().__init__(parent, objectName="contextGauge")
        self._counter = counter
        self._accounts = accounts
        self._composer = composer
        self._panel = panel
        self._target = target
        self._conversation = conversation
        self._spawn = spawn
        self._busy = busy
        self._task: asyncio.Task[Any] | None = None
        self._stopped = False
        self.tokens: int | None = None  # the last count, None before one
        self.context_window: int | None = None  # the model's, None when not known
        self.confirm_box: QMessageBox | None = None  # the open "send anyway?" question
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setToolTip("Tokens of the system prompt, the conversation and your message, as LiteLLM counts them")
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        composer.textChanged.connect(self.schedule)
        panel.changed.connect(self.schedule)
        panel.loaded.connect(self.schedule)
        for signal in refresh_on:
            signal.connect(self.schedule)
        self.setVisible(False)

    @property
    def over(self) -> bool:
        return self.tokens is not None and self.context_window is not None and self.tokens > self.context_window

    @property
    def scheduled(self) -> bool:
        """A count waits for typing to pause."""
        return self._timer.isActive()

    @property
    def counting(self) -> bool:
        return self._task is not None and not self._task.done()

    def schedule(self, *_args: object) -> None:
        """Count again once typing pauses."""
        if not self._stopped:
            self._timer.start()

    def stop(self) -> None:
        """No more counts (the pane is closing; its task owner cancels one under way)."""
        self._stopped = True
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        if self._busy():
            return  # counted again once the reply has ended (`refresh_on`)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = self._spawn(self.refresh())

    async def refresh(self) -> None:
        """Count now and show it."""
        target = self._target()
        account = self._account(target[0]) if target else None
        if target is None or account is None:
            self._show(None, None)
            return
        conversation = self._conversation()
        try:
            info = await self._accounts.model_info(*target)
            tokens = await self._counter.count(
                account=account,
                model=target[1],
                conversation_id=None if conversation is None else conversation.id,
                system_prompt=self._panel.params().system_prompt,
                draft=self._composer.toPlainText(),
            )
        except DomainError as exc:  # the store cannot be read: its banner says why
            log.info("no context count: %s", exc.kind)
            tokens, info = None, None
        except asyncio.CancelledError:
            raise
        except Exception:  # a count must never break the composer
            log.warning("counting the conversation's tokens failed", exc_info=True)
            tokens, info = None, None
        if self._target() == target:  # the pick may have changed meanwhile
            self._show(tokens, None if info is None else info.context_window)

    def _account(self, target_id: str) -> Account | None:
        if is_pool_id(target_id):
            pool = self._accounts.pool(target_id)
            target_id = pool.account_ids[0] if pool and pool.account_ids else ""
        return self._accounts.find(target_id)

    def _show(self, tokens: int | None, window: int | None) -> None:
        self.tokens, self.context_window = tokens, window
        if tokens is None:
            self.setText("")
        elif window is None:
            self.setText(f"{tokens:,} tokens")
        else:
            self.setText(f"{tokens:,} / {window:,} tokens")
        set_tone(self, "warning" if self.over else None)
        self.setVisible(tokens is not None)

    def confirm_then(self, send: Callable[[], None]) -> None:
        """Call `send` now, or once the user agrees when the conversation is over the model's window."""
        if not self.over:
            send()
            return
        assert self.tokens is not None and self.context_window is not None
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Longer than the model's window",
            f"This conversation is about {self.tokens:,} tokens, more than the model's window of "
            f"{self.context_window:,}; send anyway?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        send_button = box.addButton("Send anyway", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: send() if button is send_button else None)
        box.finished.connect(lambda _result: setattr(self, "confirm_box", None))
        self.confirm_box = box
        box.open()
