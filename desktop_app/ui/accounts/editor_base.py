"""What the Accounts and Pools tabs share: the service's items listed on the left (a hint in the list's
place while there are none), the form of the selected item, or of a new one, on the right.

The form follows the list's current row. Removing asks first; the answer removes the item only if the
form still holds it, and the form moves on to its neighbour.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, ClassVar

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListView,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.accounts.model import AccountItemDelegate, ItemListModel
from desktop_app.ui.common.dialogs import ask_to_confirm
from desktop_app.ui.common.tasks import TaskOwner

FORM_MAX_WIDTH = 660


def move_current_row(items: QListWidget, delta: int) -> None:
    """Move the current row of `items` `delta` places (negative: up); it stays current."""
    row_ = items.currentRow()
    target = row_ + delta
    if row_ < 0 or not 0 <= target < items.count():
        return
    item = items.takeItem(row_)
    items.insertItem(target, item)
    items.setCurrentRow(target)


def up_down_buttons(items: QListWidget, up: QPushButton, down: QPushButton) -> None:
    """Enable Move up / Move down as the current row of `items` allows."""
    row_ = items.currentRow()
    up.setEnabled(row_ > 0)
    down.setEnabled(0 <= row_ < items.count() - 1)


class ListEditor(QWidget):
    """A list of a service's items beside the form of one of them.

    A subclass sets `model` before calling `_build_list`, builds its form and `remove_button`, names
    the form's name field and Save button as `_name_field` and `_save_field`, puts them together with `_split`, calls `_connect_list` and
    `_show_first`, and fills in the hooks: `_find`, `_show_item`, `_delete`, `_announce_removed`,
    `_show_status`.
    """

    NOUN: ClassVar[str]  # "account", "pool": in the question before removing
    REMOVAL_NOTE: ClassVar[str]  # what removing takes with it, or leaves

    model: ItemListModel
    _name_field: QLineEdit
    _save_field: QPushButton
    remove_button: QPushButton

    def __init__(self, *, task_owner: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = TaskOwner(task_owner)
        self._editing_id: str | None = None  # None: the form holds a new, unsaved item
        self._form_generation = 0  # bumped whenever the form is loaded, so stale results are dropped
        self._confirm_box: QMessageBox | None = None

    # --- hooks ---------------------------------------------------------------------------------

    def _find(self, item_id: str) -> Any:
        """The item with `item_id` as the service has it now, or None."""
        raise NotImplementedError

    def _show_item(self, item: Any) -> None:
        """Fill the form with `item` (None: empty it for a new one); `editing_id` is already set."""
        raise NotImplementedError

    async def _delete(self, item: Any) -> None:
        raise NotImplementedError

    def _announce_removed(self, item: Any) -> None:
        """Say in the status line that `item` was removed, and emit the editor's signal."""
        raise NotImplementedError

    def _show_status(self, text: str, colour: str | None) -> None:
        raise NotImplementedError

    # --- construction --------------------------------------------------------------------------

    def _build_list(self, *, object_name: str, hint: str, hint_name: str, status_line: bool) -> None:
        self.list_view = QListView(objectName=object_name, uniformItemSizes=True)
        self.list_view.setModel(self.model)
        self.list_view.setItemDelegate(AccountItemDelegate(self.list_view, status_line=status_line))
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # The hint sits on the same framed, base-coloured panel as the list, so the area keeps its shape.
        self.empty_hint = QLabel(
            hint,
            objectName=hint_name,
            wordWrap=True,
            margin=24,
            alignment=Qt.AlignmentFlag.AlignCenter,
            frameShape=QFrame.Shape.StyledPanel,
            autoFillBackground=True,
            backgroundRole=QPalette.ColorRole.Base,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self._list_stack = QStackedWidget()
        self._list_stack.addWidget(self.list_view)
        self._list_stack.addWidget(self.empty_hint)

    def _split(self, form: QWidget, *button_rows: QLayout) -> QSplitter:
        """The list with `button_rows` under it on the left, `form` on the right."""
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        left_layout.addWidget(self._list_stack, 1)
        for button_row in button_rows:
            left_layout.addLayout(button_row)
        form.setMaximumWidth(FORM_MAX_WIDTH)
        right = QWidget()
        right_layout = QHBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(form, 1)
        right_layout.addStretch(0)  # takes only the room beyond the form's maximum width

        splitter = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([340, FORM_MAX_WIDTH])
        return splitter

    def _connect_list(self) -> None:
        self.list_view.selectionModel().currentChanged.connect(self._on_list_current_changed)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._update_empty_state)

    def _show_first(self) -> None:
        """Start on the first item, or on an empty form when there is none."""
        self._update_empty_state()
        first = self.model.item_at(0)
        if first is not None:
            self._select(first.id)
        else:
            self._load(None)

    # --- public --------------------------------------------------------------------------------

    @property
    def editing_id(self) -> str | None:
        """The id of the item in the form, or None for a new one."""
        return self._editing_id

    @property
    def confirm_box(self) -> QMessageBox | None:
        """The open "Remove …?" question, if any."""
        return self._confirm_box

    def cancel_tasks(self) -> None:
        self._tasks.cancel_all()

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- the list and the form -----------------------------------------------------------------

    def _current(self) -> Any:
        """The item in the form as the service has it now; None for a new one."""
        return self._find(self._editing_id) if self._editing_id else None

    def _select(self, item_id: str) -> None:
        row_ = self.model.row_of(item_id)
        if row_ >= 0:
            self.list_view.setCurrentIndex(self.model.index(row_))

    def _start_new(self) -> None:
        generation = self._form_generation
        self.list_view.selectionModel().clear()  # leaving an item loads an empty form by itself
        if generation == self._form_generation:
            self._load(None)
        self._name_field.setFocus()

    def _load(self, item: Any) -> None:
        self._form_generation += 1
        self._editing_id = item.id if item is not None else None
        self._show_item(item)
        self.remove_button.setEnabled(item is not None)

    async def _write(self, save: Awaitable[Any]) -> bool:
        """Await `save` with Save disabled; False, said in the status line, when the settings file
        could not be written."""
        self._save_field.setEnabled(False)
        try:
            await save
        except OSError as exc:
            self._show_status(f"Not saved: the settings file could not be written ({exc.strerror or exc}).", "error")
            return False
        finally:
            self._save_field.setEnabled(True)
        return True

    async def _remove_current(self, confirmed: bool) -> bool:
        """Remove the item in the form. Unconfirmed, this only asks; the answer removes it."""
        item = self._current()
        if item is None:
            return False
        if not confirmed:
            self._ask_to_remove(item)
            return False
        row_ = self.model.row_of(item.id)
        await self._delete(item)
        neighbour = self.model.item_at(min(row_, self.model.rowCount() - 1))
        if neighbour is not None:
            self._select(neighbour.id)
        else:
            self._start_new()
        self._announce_removed(item)
        return True

    def _ask_to_remove(self, item: Any) -> None:
        if self._confirm_box is not None:
            return
        self._confirm_box = ask_to_confirm(
            self,
            title=f"Remove {self.NOUN}",
            text=f"Remove the {self.NOUN} “{item.label}”?",
            informative=self.REMOVAL_NOTE,
            action="Remove",
            on_answer=lambda confirmed: self._on_confirm_finished(confirmed, item.id),
        )

    # --- reactions -----------------------------------------------------------------------------

    def _on_confirm_finished(self, confirmed: bool, item_id: str) -> None:
        self._confirm_box = None
        if confirmed and self._editing_id == item_id:
            self._tasks.spawn(self._remove_current(True))

    def _on_list_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = self.model.item_at(current.row()) if current.isValid() else None
        if item is not None:
            self.list_view.selectionModel().select(current, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if item.id != self._editing_id:  # a row that moved is still the item in the form
                self._load(item)
        elif self._editing_id is not None:
            self._load(None)

    def _update_empty_state(self) -> None:
        self._list_stack.setCurrentWidget(self.list_view if self.model.rowCount() else self.empty_hint)
