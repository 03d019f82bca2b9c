"""The chat pane's storage faults: what the store refused, the history banner, reopen and recover."""

from __future__ import annotations

import html

from desktop_app.domain.errors import StorageFailed


class StoreFaultsMixin:
    """ChatPane's methods for a conversation store that refused something; they share the reply's state."""

    def _on_storage_failed(self, error: StorageFailed, *, retry: str) -> None:
        """Say what the store refused and remember what Retry must redo; a damaged file that was
        set aside empties the list (its conversations are in the copy, offered for recovery)."""
        self._retry_kind = retry
        self._storage_fault_shown = True
        self.transcript.show_error(error.message, action=error.action, retry=True)
        if self._chat.store.damaged_copy is not None and error.cause == "damaged":
            self._current = None
            self.conversations.set_conversations([])
        self._show_store_state()

    async def _saying_storage_faults(self, coro) -> None:
        """Run a conversation action (new, rename, delete); a storage fault is said, not just logged."""
        try:
            await coro
        except StorageFailed as exc:
            self.transcript.show_error(
                exc.message, action=exc.action.replace(", then Retry", ", then try again"), retry=False
            )
            self._show_store_state()

    def _show_store_state(self) -> None:
        store = self._chat.store
        if not store.is_open and store.problem is not None:
            body = (
                f"{html.escape(store.problem.message)} Your conversations show here once it opens. "
                f'{html.escape(store.problem.action)} <a href="reopen">Retry</a>'
            )
        elif store.damaged_copy is not None:
            body = f'{html.escape(store.notice or "")} <a href="recover">Recover what can still be read</a>'
        else:
            body = ""
        if body or not self.store_banner.text().startswith("Recovered"):
            self.store_banner.setText(body)
            self.store_banner.setVisible(bool(body))

    def _on_store_banner_link(self, href: str) -> None:
        if href == "reopen":
            self._tasks.spawn(self.reopen_store())
        elif href == "recover":
            self._tasks.spawn(self.recover_history())

    async def reopen_store(self, *, select: bool = True) -> bool:
        """Try again to open the conversation history (it was locked...); True once it is open."""
        try:
            await self._chat.store.open()
        except StorageFailed:
            self._show_store_state()
            return False
        await self.load_conversations(select=select)
        return True

    async def recover_history(self) -> tuple[int, int]:
        """Copy what the damaged file set aside still holds into the new one, and list it."""
        store = self._chat.store
        source = store.damaged_copy
        try:
            conversations, messages = await store.recover()
        except StorageFailed as exc:
            self.store_banner.setText(html.escape(f"{exc.message} {exc.action}"))
            return 0, 0
        self.store_banner.setText(
            html.escape(
                f"Recovered {conversations} conversation{'s' if conversations != 1 else ''} and {messages} "
                f"message{'s' if messages != 1 else ''} from {source}."
            )
        )
        self.store_banner.setVisible(True)
        await self.load_conversations(self._current.id if self._current else None)
        return conversations, messages
