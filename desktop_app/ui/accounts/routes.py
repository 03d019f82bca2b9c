"""The Routes tab of the Accounts pane: one name the chat's picker shows, with an ordered list of
targets (an account or a pool, plus one of its models) across providers and local servers.

The route list is a Qt model over the service's routes; the target list is form state (what the user
is composing), a plain list widget until Save, as the pools tab's member list is.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.routes import Route, RouteTarget, new_route_id
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.ui.accounts.editor_base import ListEditor, move_current_row, up_down_buttons
from desktop_app.ui.accounts.form import bold_title, first_problem, row
from desktop_app.ui.accounts.model import DetailRole, ItemListModel, colour_icon, sync_rows
from desktop_app.ui.common.events import follow
from desktop_app.ui.theme import set_tone

RouteIdRole = Qt.ItemDataRole.UserRole
TargetRole = Qt.ItemDataRole.UserRole  # (target id, model) on a target row

EMPTY_ROUTES_HINT = (
    "No routes yet. A route is one name in the model picker over several models across providers and "
    "local servers: when one cannot answer, the next one does."
)
NO_TARGETS = "add at least one target to the route"
TARGETS_HINT = (
    "Tried in this order. The request moves on when a target is unreachable, too slow, rate-limited, "
    "failing, or the conversation is too long for it (then to a model with a larger window); never "
    "once text has arrived."
)


def route_detail(route: Route) -> str:
    count = len(route.targets)
    return f"{count} target{'' if count == 1 else 's'}"


class RouteListModel(ItemListModel):
    """One row per route, in the order the service keeps them."""

    ID_ROLE = RouteIdRole
    ROLE_NAMES: ClassVar[dict[int, bytes]] = {RouteIdRole: b"routeId", DetailRole: b"detail"}

    def __init__(self, *, accounts: AccountService, parent: Any = None) -> None:
        super().__init__(accounts.routes, parent)
        self._service = accounts
        self._rows: list[Route]
        follow(self, accounts.on_accounts_changed, self._on_accounts_changed)

    def detail(self, item: Route) -> str:
        return route_detail(item)

    def _on_accounts_changed(self) -> None:
        sync_rows(self, self._rows, self._service.routes)


class RoutesEditor(ListEditor):
    route_saved = Signal(str)  # route id
    route_removed = Signal(str)  # route id

    NOUN = "route"
    REMOVAL_NOTE = "Its accounts, pools and their keys stay."

    def __init__(self, *, accounts: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(task_owner="RoutesEditor", parent=parent)
        self._accounts = accounts
        self.model = RouteListModel(accounts=accounts, parent=self)
        self._build()
        self._connect()
        follow(self, accounts.on_accounts_changed, self._on_accounts_changed)
        follow(self, accounts.on_models_changed, self._on_models_changed)
        self._show_first()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self._build_list(
            object_name="routeList", hint=EMPTY_ROUTES_HINT, hint_name="emptyRoutesHint", status_line=False
        )
        self.new_button = QPushButton("New route", objectName="newRoute")
        self.remove_button = QPushButton("Remove", objectName="removeRoute")

        self.form_title = bold_title(QLabel(objectName="routeTitle"))
        self.name_edit = QLineEdit(objectName="routeName", placeholderText="private-first")
        self.targets_list = QListWidget(objectName="routeTargets")
        self.targets_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.targets_list.setSpacing(2)
        self.target_up_button = QPushButton("Move up", objectName="targetUp", toolTip="Tried earlier")
        self.target_down_button = QPushButton("Move down", objectName="targetDown")
        self.target_remove_button = QPushButton("Remove target", objectName="targetRemove")
        target_buttons = QVBoxLayout()
        target_buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.target_up_button, self.target_down_button, self.target_remove_button):
            target_buttons.addWidget(button)
        target_buttons.addStretch(1)
        target_list_row = QHBoxLayout()
        target_list_row.setContentsMargins(0, 0, 0, 0)
        target_list_row.addWidget(self.targets_list, 1)
        target_list_row.addLayout(target_buttons)

        self.target_combo = QComboBox(objectName="targetSource", toolTip="An account or a pool")
        self.model_combo = QComboBox(objectName="targetModel", toolTip="One of that account's or pool's models")
        self.model_combo.setMinimumContentsLength(18)
        self.add_target_button = QPushButton("Add", objectName="addTarget")
        add_row = QHBoxLayout()
        add_row.setContentsMargins(0, 0, 0, 0)
        add_row.addWidget(self.target_combo, 1)
        add_row.addWidget(self.model_combo, 1)
        add_row.addWidget(self.add_target_button)
        self.targets_hint = QLabel(
            TARGETS_HINT, objectName="targetsHint", wordWrap=True, foregroundRole=QPalette.ColorRole.PlaceholderText
        )
        targets = QVBoxLayout()
        targets.setContentsMargins(0, 0, 0, 0)
        targets.setSpacing(4)
        targets.addLayout(target_list_row)
        targets.addLayout(add_row)
        targets.addWidget(self.targets_hint)

        self.fields = QFormLayout()
        self.fields.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.fields.addRow("Name", self.name_edit)
        self.fields.addRow("Targets", targets)
        self.save_button = QPushButton("Save", objectName="saveRoute", default=True)
        self._name_field, self._save_field = self.name_edit, self.save_button
        self.status_label = QLabel(objectName="routeStatus", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        form_box = QWidget()
        form_layout = QVBoxLayout(form_box)
        form_layout.setContentsMargins(12, 0, 0, 0)
        form_layout.addWidget(self.form_title)
        form_layout.addSpacing(4)
        form_layout.addLayout(self.fields)
        form_layout.addLayout(row(self.save_button, None))
        form_layout.addWidget(self.status_label)
        form_layout.addStretch(1)

        self.health_spin = QSpinBox(
            objectName="healthCheckMinutes",
            minimum=0,
            maximum=24 * 60,
            suffix=" min",
            specialValueText="off",
            toolTip="Every account's model list is asked this often (never a paid call); a route or pool "
            "skips an account found down, unless all are.",
        )
        self.health_spin.setValue(self._accounts.health_check_minutes)
        self.retries_spin = QSpinBox(
            objectName="requestRetries",
            minimum=0,
            maximum=5,
            suffix=" times",
            specialValueText="never",
            toolTip="After a rate limit, an overloaded or failing server or a timeout, before any text: the "
            "same account is asked again this often, waiting longer each time (or as long as the server "
            "says), before a pool or route moves on or the reply fails.",
        )
        self.retries_spin.setValue(self._accounts.request_retries)
        health_row = QHBoxLayout()
        health_row.setContentsMargins(0, 0, 0, 0)
        health_row.addWidget(QLabel("Health check of every account:"))
        health_row.addWidget(self.health_spin)
        health_row.addSpacing(24)
        health_row.addWidget(QLabel("Ask again after a passing failure:"))
        health_row.addWidget(self.retries_spin)
        health_row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._split(form_box, row(self.new_button, self.remove_button, None)), 1)
        layout.addLayout(health_row)

    def _connect(self) -> None:
        self._connect_list()
        self.new_button.clicked.connect(self.start_new_route)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.name_edit.returnPressed.connect(self._on_save_clicked)
        self.target_combo.currentIndexChanged.connect(self._on_target_source_changed)
        self.add_target_button.clicked.connect(self._on_add_target_clicked)
        self.targets_list.currentRowChanged.connect(self._update_target_buttons)
        self.target_up_button.clicked.connect(lambda: self.move_target(-1))
        self.target_down_button.clicked.connect(lambda: self.move_target(1))
        self.target_remove_button.clicked.connect(self.remove_current_target)
        self.health_spin.editingFinished.connect(self._on_health_interval_edited)
        self.retries_spin.editingFinished.connect(self._on_retries_edited)

    # --- slots ---------------------------------------------------------------------------------

    def _on_save_clicked(self) -> None:
        self._tasks.spawn(self.save_current_route())

    def _on_remove_clicked(self) -> None:
        self._tasks.spawn(self.remove_selected_route(False))

    def _on_health_interval_edited(self) -> None:
        if self.health_spin.value() != self._accounts.health_check_minutes:
            self._tasks.spawn(self._accounts.set_health_check_minutes(self.health_spin.value()))

    def _on_retries_edited(self) -> None:
        if self.retries_spin.value() != self._accounts.request_retries:
            self._tasks.spawn(self._accounts.set_request_retries(self.retries_spin.value()))

    def _on_add_target_clicked(self) -> None:
        target_id, model = self.target_combo.currentData(), self.model_combo.currentText().strip()
        if target_id and model:
            self.add_target(target_id, model)

    # --- public --------------------------------------------------------------------------------

    def select_route(self, route_id: str) -> None:
        self._select(route_id)

    def start_new_route(self) -> None:
        self._start_new()

    def targets(self) -> list[tuple[str, str]]:
        """(account or pool id, model) per target, in the order shown."""
        return [self.targets_list.item(r).data(TargetRole) for r in range(self.targets_list.count())]

    def add_target(self, target_id: str, model: str) -> None:
        self._add_target_item(target_id, model)
        self.targets_list.setCurrentRow(self.targets_list.count() - 1)

    def move_target(self, delta: int) -> None:
        move_current_row(self.targets_list, delta)

    def remove_current_target(self) -> None:
        row_ = self.targets_list.currentRow()
        if row_ >= 0:
            self.targets_list.takeItem(row_)
        self._update_target_buttons()

    async def save_current_route(self) -> Route | None:
        """Save the form as a route; None (and one sentence in the status line) when it is not acceptable."""
        try:
            route = Route(
                id=self._editing_id or new_route_id(),
                label=self.name_edit.text(),
                targets=tuple(RouteTarget(target_id=t, model=m) for t, m in self.targets()),
            )
        except ValidationError as exc:
            self._show_status(f"Not saved: {first_problem(exc)}.", "error")
            return None
        if not route.targets:
            self._show_status(f"Not saved: {NO_TARGETS}.", "error")
            return None
        try:
            if not await self._write(self._accounts.save_route(route)):
                return None
        except ValueError as exc:  # a target that was removed meanwhile
            message = str(exc).rstrip(".")
            self._show_status(f"Not saved: {message[:1].lower()}{message[1:]}.", "error")
            return None
        if self._editing_id == route.id:
            self.form_title.setText(route.label)
        else:
            self.select_route(route.id)
        self._show_status(f"Saved route “{route.label}”.", None)
        self.route_saved.emit(route.id)
        return route

    async def remove_selected_route(self, confirmed: bool = False) -> bool:
        return await self._remove_current(confirmed)

    # --- the form ------------------------------------------------------------------------------

    def _find(self, item_id: str) -> Route | None:
        return self._accounts.route(item_id)

    async def _delete(self, route: Route) -> None:
        await self._accounts.remove_route(route.id)

    def _announce_removed(self, route: Route) -> None:
        self._show_status(f"Removed route “{route.label}”; its accounts and pools stay.", None)
        self.route_removed.emit(route.id)

    def _show_item(self, route: Route | None) -> None:
        self.name_edit.setText(route.label if route is not None else "")
        self._fill_sources()
        self._fill_targets([(t.target_id, t.model) for t in route.targets] if route is not None else [])
        self.form_title.setText(route.label if route is not None else "New route")
        self._show_status("", None)

    def _source_label(self, target_id: str) -> tuple[str, str]:
        """(shown name, colour) of an account or pool; ("", "") when it is gone."""
        pool = self._accounts.pool(target_id)
        if pool is not None:
            return f"{pool.label} (pool)", ""
        account = self._accounts.find(target_id)
        return (account.label, account.colour) if account is not None else ("", "")

    def _fill_sources(self) -> None:
        """Every chat account and pool, keeping the one picked."""
        current = self.target_combo.currentData()
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        for pool in self._accounts.pools:
            self.target_combo.addItem(f"{pool.label} (pool)", pool.id)
        for account in self._accounts.accounts:
            if account.provider.chat:
                self.target_combo.addItem(colour_icon(account.colour), account.label, account.id)
        self.target_combo.setCurrentIndex(max(self.target_combo.findData(current), 0))
        self.target_combo.blockSignals(False)
        self._on_target_source_changed()

    def _fill_targets(self, targets: list[tuple[str, str]]) -> None:
        self.targets_list.clear()
        for target_id, model in targets:
            self._add_target_item(target_id, model)
        self._update_target_buttons()
        # Room for six targets, so a short route leaves no well of white (the pools tab's members do the same).
        row_height = max(self.targets_list.sizeHintForRow(0), self.targets_list.fontMetrics().height() + 6)
        spacing = 2 * self.targets_list.spacing()
        self.targets_list.setFixedHeight(6 * (row_height + spacing) + 2 * self.targets_list.frameWidth() + 2)

    def _add_target_item(self, target_id: str, model: str) -> None:
        label, colour = self._source_label(target_id)
        item = QListWidgetItem(colour_icon(colour), f"{model}  —  {label or 'removed'}")  # blank icon: aligned
        item.setData(TargetRole, (target_id, model))
        self.targets_list.addItem(item)
        self._update_target_buttons()

    def _show_status(self, text: str, tone: str | None) -> None:
        self.status_label.setText(text)
        set_tone(self.status_label, tone)

    # --- reactions -----------------------------------------------------------------------------

    def _on_accounts_changed(self) -> None:
        # Accounts, pools or models changed: keep what the user is composing.
        self._fill_sources()
        self._fill_targets(self.targets())

    def _on_models_changed(self, _account_id: str) -> None:
        self._on_target_source_changed()

    def _on_target_source_changed(self, _index: int = 0) -> None:
        models = self._accounts.target_models(self.target_combo.currentData() or "")
        self.model_combo.clear()
        self.model_combo.addItems(list(models))
        usable = self.target_combo.count() > 0 and bool(models)
        self.add_target_button.setEnabled(usable)

    def _update_target_buttons(self, _row: int = -1) -> None:
        up_down_buttons(self.targets_list, self.target_up_button, self.target_down_button)
        self.target_remove_button.setEnabled(self.targets_list.currentRow() >= 0)
