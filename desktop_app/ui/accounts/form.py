"""The account form of the Accounts pane: the fields, how they load an account and how they read back.

No service calls here: the pane owns the async work (saving, checking) and the key's stored state.
"""

from __future__ import annotations

import json

from pydantic import ValidationError
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import COLOURS, Account, parse_headers
from desktop_app.domain.cloud_secrets import one_line, parse_cloud_secret
from desktop_app.domain.http_fields import check_header, check_key, is_credential_header
from desktop_app.domain.providers import AWS_REGION, AZURE_API_VERSION, PROVIDERS, VERTEX_LOCATION, Provider
from desktop_app.services.accounts.cloud_auth import missing_extra
from desktop_app.ui.theme import set_tone

STORED_KEY_PLACEHOLDER = "•••• stored — leave empty to keep"
NO_LIMIT = "none"
HEADERS_PLACEHOLDER = "anthropic-beta: prompt-caching-2024-07-31\nOne “Name: value” per line"
# Shown for a credential header's stored value; left as it is, the stored value is kept.
SECRET_MASK = "•••• stored"
# The fields Save can refuse, each with its note (Account field names).
NOTED_FIELDS = (
    "label",
    "base_url",
    "key",
    "extra_headers",
    "api_version",
    "deployments",
    "project",
    "location",
    "region",
    "aws_profile",
)
# The account tags are user data, not theme colours: named in the order of domain.accounts.COLOURS.
COLOUR_NAMES = dict(zip(COLOURS, ("No colour", "Amber", "Blue", "Green", "Pink", "Violet", "Cyan", "Red"), strict=True))


def row(*widgets: QWidget | None) -> QHBoxLayout:
    """Widgets side by side; None is a stretch. The first widget takes the spare room if no stretch."""
    layout = QHBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        if widget is None:
            layout.addStretch(1)
        else:
            layout.addWidget(widget)
    if None not in widgets:
        layout.setStretch(0, 1)
    return layout


def first_problem(error: ValidationError) -> str:
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ").rstrip(".")


def bold_title(label: QLabel) -> QLabel:
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.25)
    label.setFont(font)
    return label


class FormProblem(ValueError):
    """What is wrong with the form, in one sentence without the final full stop; `field` names the
    field it is about ("base_url", "extra_headers", "key"...) when there is one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- the colour tag ----------------------------------------------------------------------------


class ColourSwatch(QAbstractButton):
    """A round, checkable swatch; the empty colour is drawn as a struck-through ring."""

    _SIZE = 22

    def __init__(self, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = colour
        self.setCheckable(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        name = COLOUR_NAMES.get(colour, colour)
        self.setToolTip(name)
        self.setAccessibleName(name)

    def sizeHint(self) -> QSize:
        return QSize(self._SIZE, self._SIZE)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        outer = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        if self.isChecked() or self.hasFocus():
            ring = palette.color(QPalette.ColorRole.Highlight if self.hasFocus() else QPalette.ColorRole.Text)
            painter.setPen(QPen(ring, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(outer)
        inner = outer.adjusted(4, 4, -4, -4)
        if self.colour:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(self.colour))
            painter.drawEllipse(inner)
        else:
            painter.setPen(QPen(palette.color(QPalette.ColorRole.PlaceholderText), 1.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(inner)
            painter.drawLine(
                QPointF(inner.left() + 2.5, inner.bottom() - 2.5), QPointF(inner.right() - 2.5, inner.top() + 2.5)
            )
        painter.end()


class ColourPicker(QWidget):
    """A row of swatches, one per tag colour ("" = none); exactly one is chosen."""

    colour_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._group = QButtonGroup(self, exclusive=True)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.swatches: list[ColourSwatch] = []
        for colour in COLOURS:
            self._add(colour)
        self._layout.addStretch(1)
        self._group.buttonToggled.connect(self._on_group_button_toggled)
        self.swatches[0].setChecked(True)

    def _add(self, colour: str) -> ColourSwatch:
        swatch = ColourSwatch(colour, self)
        self._group.addButton(swatch)
        self._layout.insertWidget(len(self.swatches), swatch)
        self.swatches.append(swatch)
        return swatch

    def colour(self) -> str:
        checked = self._group.checkedButton()
        return checked.colour if isinstance(checked, ColourSwatch) else ""

    def set_colour(self, colour: str) -> None:
        colour = colour.lower()
        swatch = next((s for s in self.swatches if s.colour == colour), None)
        if swatch is None:  # a colour set outside this picker: offer it too rather than lose it
            swatch = self._add(colour)
        swatch.setChecked(True)

    def swatch(self, colour: str) -> ColourSwatch | None:
        return next((s for s in self.swatches if s.colour == colour), None)

    def _on_group_button_toggled(self, button: QAbstractButton, checked: bool) -> None:
        if checked and isinstance(button, ColourSwatch):
            self.colour_changed.emit(button.colour)


# --- the form ----------------------------------------------------------------------------------


class AccountForm(QWidget):
    """Every field of one account, plus the Save/Check buttons and the status line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form_title = bold_title(QLabel(objectName="formTitle"))
        self.organisation_label = QLabel(
            objectName="organisation", visible=False, foregroundRole=QPalette.ColorRole.PlaceholderText
        )
        self.organisation_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.provider_combo = QComboBox(objectName="provider")
        for provider in PROVIDERS.values():
            self.provider_combo.addItem(provider.name, provider.id)
        self.name_edit = QLineEdit(objectName="name", placeholderText="Claude, work")
        self.url_edit = QLineEdit(objectName="baseUrl")
        self.key_edit = QLineEdit(objectName="apiKey", echoMode=QLineEdit.EchoMode.Password)
        self.key_edit.setMinimumWidth(self.key_edit.fontMetrics().horizontalAdvance(STORED_KEY_PLACEHOLDER) + 24)
        self.show_key_button = QPushButton(
            "Show", objectName="showKey", checkable=True, enabled=False, toolTip="Show the key you typed"
        )
        self.remove_key_button = QPushButton(
            "Remove key", objectName="removeKey", toolTip="Delete this account's stored key"
        )
        self.remove_key_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.key_warning_label = QLabel(objectName="keyWarning", wordWrap=True)
        set_tone(self.key_warning_label, "warning")
        self.key_warning_label.setTextFormat(Qt.TextFormat.PlainText)
        # One sentence beside each field that Save can refuse, in the field's own words.
        self.problem_labels = {
            field: QLabel(objectName=f"{field}Problem", wordWrap=True, visible=False) for field in NOTED_FIELDS
        }
        for label in self.problem_labels.values():
            set_tone(label, "error")
            label.setTextFormat(Qt.TextFormat.PlainText)
        # Azure OpenAI only: the data-plane API version and the deployments to chat with.
        self.api_version_edit = QLineEdit(objectName="apiVersion", placeholderText=AZURE_API_VERSION)
        self.deployments_edit = QLineEdit(
            objectName="deployments",
            placeholderText="gpt-4o, gpt-4o-mini",
            toolTip="The names of your deployments, comma-separated; Check adds those the resource lists",
        )
        # Google Vertex AI only: the project and region; the key field holds the service-account key file.
        self.project_edit = QLineEdit(objectName="project", placeholderText="the service account's project")
        self.location_edit = QLineEdit(objectName="location", placeholderText=VERTEX_LOCATION)
        self.key_file_button = QPushButton(
            "Load key file…", objectName="loadKeyFile", toolTip="Read the service account's JSON key file"
        )
        # Amazon Bedrock only: its keys (kept as one JSON entry, through the hidden key field) or a
        # named AWS profile, and the region.
        self.aws_key_id_edit = QLineEdit(objectName="awsAccessKeyId", placeholderText="AKIA…")
        self.aws_secret_edit = QLineEdit(objectName="awsSecretAccessKey", echoMode=QLineEdit.EchoMode.Password)
        self.aws_token_edit = QLineEdit(
            objectName="awsSessionToken", echoMode=QLineEdit.EchoMode.Password, placeholderText="optional"
        )
        self.aws_profile_edit = QLineEdit(objectName="awsProfile", placeholderText="instead of keys: a profile name")
        self.region_edit = QLineEdit(objectName="region", placeholderText=AWS_REGION)
        self.extra_label = QLabel(objectName="missingExtra", wordWrap=True, visible=False)
        self.extra_label.setTextFormat(Qt.TextFormat.PlainText)
        self.extra_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        set_tone(self.extra_label, "warning")
        self.colour_picker = ColourPicker()
        self.colour_picker.setObjectName("colour")
        self.headers_edit = QPlainTextEdit(
            objectName="extraHeaders", placeholderText=HEADERS_PLACEHOLDER, tabChangesFocus=True
        )
        self.headers_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        lines = self.headers_edit.fontMetrics().lineSpacing()
        self.headers_edit.setFixedHeight(3 * lines + 2 * int(self.headers_edit.document().documentMargin()) + 6)
        self.enabled_check = QCheckBox(
            "Use this account",
            objectName="enabled",
            checked=True,
            toolTip="A disabled account is kept, with its key, but offered nowhere",
        )
        self.budget_tokens_spin = QSpinBox(
            objectName="dailyBudgetTokens",
            minimum=0,
            maximum=1_000_000_000,
            singleStep=10_000,
            suffix=" tokens",
            specialValueText=NO_LIMIT,
            groupSeparatorShown=True,
            toolTip="Tokens this account may use per day; “none” for no limit",
        )
        self.budget_usd_spin = QDoubleSpinBox(
            objectName="dailyBudgetUsd",
            minimum=0.0,
            maximum=100_000.0,
            decimals=2,
            singleStep=1.0,
            suffix=" USD",
            specialValueText=NO_LIMIT,
            groupSeparatorShown=True,
            toolTip="What this account may spend per day; “none” for no limit",
        )
        for spin in (self.budget_tokens_spin, self.budget_usd_spin):
            spin.setMinimumWidth(spin.fontMetrics().horizontalAdvance("1,000,000,000 tokens") + 40)

        self.fields = QFormLayout()
        fields = self.fields
        fields.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        fields.addRow("Provider", self.provider_combo)
        fields.addRow("Name", _with_note(self.name_edit, self.problem_labels["label"]))
        fields.addRow("Base URL", _with_note(self.url_edit, self.problem_labels["base_url"]))
        self._azure_rows = (
            _with_note(self.api_version_edit, self.problem_labels["api_version"]),
            _with_note(self.deployments_edit, self.problem_labels["deployments"]),
        )
        fields.addRow("API version", self._azure_rows[0])
        fields.addRow("Deployments", self._azure_rows[1])
        self._vertex_rows = (
            _with_note(self.project_edit, self.problem_labels["project"]),
            _with_note(self.location_edit, self.problem_labels["location"]),
        )
        fields.addRow("Project", self._vertex_rows[0])
        fields.addRow("Location", self._vertex_rows[1])
        self._aws_rows = (
            self.aws_key_id_edit,
            self.aws_secret_edit,
            self.aws_token_edit,
            _with_note(self.aws_profile_edit, self.problem_labels["aws_profile"]),
            _with_note(self.region_edit, self.problem_labels["region"]),
        )
        for title, field in zip(
            ("Access key id", "Secret access key", "Session token", "AWS profile", "Region"),
            self._aws_rows,
            strict=True,
        ):
            fields.addRow(title, field)
        key_field = QVBoxLayout()
        key_field.setContentsMargins(0, 0, 0, 0)
        key_field.setSpacing(4)
        key_field.addLayout(row(self.key_edit, self.key_file_button, self.show_key_button, self.remove_key_button))
        key_field.addWidget(self.key_warning_label)  # right under the key it is about
        key_field.addWidget(self.problem_labels["key"])
        key_field.addWidget(self.extra_label)
        fields.addRow("API key", key_field)
        self._key_field = key_field
        fields.addRow("Colour", self.colour_picker)
        fields.addRow("Extra headers", _with_note(self.headers_edit, self.problem_labels["extra_headers"]))
        fields.addRow("", self.enabled_check)
        fields.addRow("Daily budget", row(self.budget_tokens_spin, self.budget_usd_spin, None))
        self.key_warning_label.setVisible(False)

        self.save_button = QPushButton("Save", objectName="save", default=True)
        self.check_button = QPushButton(
            "Check", objectName="check", toolTip="List the provider's models with these settings; uses no tokens"
        )
        self.status_label = QLabel(objectName="status", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 0, 0, 0)
        layout.addWidget(self.form_title)
        layout.addWidget(self.organisation_label)
        layout.addSpacing(4)
        layout.addLayout(fields)
        layout.addLayout(row(self.save_button, self.check_button, None))
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.provider_combo.currentIndexChanged.connect(self._on_provider_changed)
        self.show_key_button.toggled.connect(self._on_show_key_toggled)
        self.key_edit.textChanged.connect(self._on_key_text_changed)
        self.name_edit.textChanged.connect(lambda: self.show_problem("label", None))
        self.url_edit.textChanged.connect(lambda: self.show_problem("base_url", None))
        self.api_version_edit.textChanged.connect(lambda: self.show_problem("api_version", None))
        self.deployments_edit.textChanged.connect(lambda: self.show_problem("deployments", None))
        self.project_edit.textChanged.connect(lambda: self.show_problem("project", None))
        self.location_edit.textChanged.connect(lambda: self.show_problem("location", None))
        self.key_file_button.clicked.connect(self._on_key_file_clicked)
        for edit in (self.aws_key_id_edit, self.aws_secret_edit, self.aws_token_edit):
            edit.textChanged.connect(self._on_aws_key_edited)
        self.aws_profile_edit.textChanged.connect(lambda: self.show_problem("aws_profile", None))
        self.region_edit.textChanged.connect(lambda: self.show_problem("region", None))
        self.headers_edit.textChanged.connect(lambda: self.show_problem("extra_headers", None))

    # --- loading and reading -------------------------------------------------------------------

    def current_provider(self) -> Provider:
        return PROVIDERS[self.provider_combo.currentData()]

    def load(self, account: Account | None) -> None:
        """Show `account` (None: empty the form for a new one). The key field is always emptied."""
        provider_id = account.provider_id if account is not None else next(iter(PROVIDERS))
        self.provider_combo.setCurrentIndex(self.provider_combo.findData(provider_id))
        self.name_edit.setText(account.label if account is not None else "")
        self.url_edit.setText((account.base_url or "") if account is not None else "")
        self.api_version_edit.setText((account.api_version or "") if account is not None else "")
        self.deployments_edit.setText(", ".join(account.deployments) if account is not None else "")
        self.project_edit.setText((account.project or "") if account is not None else "")
        self.location_edit.setText((account.location or "") if account is not None else "")
        self.aws_profile_edit.setText((account.aws_profile or "") if account is not None else "")
        self.region_edit.setText((account.region or "") if account is not None else "")
        self.key_edit.clear()  # unchecks "Show" too
        self.colour_picker.set_colour(account.colour if account is not None else "")
        lines = [f"{name}: {value}" for name, value in account.extra_headers.items()] if account else []
        lines += [f"{name}: {SECRET_MASK}" for name in account.secret_headers] if account else []
        self.headers_edit.setPlainText("\n".join(lines))
        self.enabled_check.setChecked(account.enabled if account is not None else True)
        self.budget_tokens_spin.setValue((account.daily_budget_tokens or 0) if account is not None else 0)
        self.budget_usd_spin.setValue((account.daily_budget_usd or 0.0) if account is not None else 0.0)
        self.form_title.setText(account.label if account is not None else "New account")
        self.show_organisation(account.organization_id if account is not None else None)
        self.show_key_warning(None)
        for field in self.problem_labels:
            self.show_problem(field, None)
        self.show_status("", None)
        self._on_provider_changed()

    def account(self, *, account_id: str, stored: Account | None, for_check: bool) -> Account:
        """The form as an Account (keeping what the form does not show from `stored`).

        Raises FormProblem with one sentence when a field is not acceptable.
        """
        label = self.name_edit.text()
        if for_check and not label.strip():
            label = self.current_provider().name  # a name is not needed to check
        for field in self.problem_labels:
            self.show_problem(field, None)
        try:
            headers = parse_headers(self.headers_edit.toPlainText())
        except ValueError as exc:
            raise self._problem(str(exc), "extra_headers") from None
        try:
            if not self.current_provider().secret_kind:
                check_key(self.key_edit.text())
            elif self.key_edit.text().strip():
                parse_cloud_secret(self.current_provider().secret_kind, self.key_edit.text())
        except ValueError as exc:
            raise self._problem(str(exc), "key") from None
        plain = {name: value for name, value in headers.items() if not is_credential_header(name)}
        for name, value in self.secret_values().items():
            try:
                check_header(name, value)
            except ValueError as exc:
                raise self._problem(str(exc), "extra_headers") from None
        azure, vertex = self.current_provider().id == "azure", self.current_provider().id == "vertex"
        aws = self.current_provider().secret_kind == "aws"
        if azure and not self.url_edit.text().strip():
            raise self._problem(
                "An Azure OpenAI account needs its endpoint (https://NAME.openai.azure.com)", "base_url"
            )
        try:
            return Account(
                id=account_id,
                provider_id=self.provider_combo.currentData(),
                api_version=self.api_version_edit.text() if azure else None,
                deployments=tuple(self.deployments_edit.text().split(",")) if azure else (),
                project=self.project_edit.text() if vertex else None,
                location=self.location_edit.text() if vertex else None,
                region=self.region_edit.text() if aws else None,
                aws_profile=self.aws_profile_edit.text() if aws else None,
                label=label,
                base_url=self.url_edit.text().strip() or None,
                colour=self.colour_picker.colour(),
                extra_headers=plain,
                secret_headers=tuple(name for name in headers if is_credential_header(name)),
                enabled=self.enabled_check.isChecked(),
                organization_id=stored.organization_id if stored is not None else None,
                daily_budget_tokens=self.budget_tokens_spin.value() or None,
                daily_budget_usd=round(self.budget_usd_spin.value(), 2) or None,
            )
        except ValidationError as exc:
            location = exc.errors()[0]["loc"]
            raise self._problem(first_problem(exc), str(location[0]) if location else "") from None

    def secret_values(self) -> dict[str, str]:
        """The credential headers' values as typed; one still showing the mask is left out (kept)."""
        try:
            headers = parse_headers(self.headers_edit.toPlainText())
        except ValueError:
            return {}
        return {
            name: value
            for name, value in headers.items()
            if is_credential_header(name) and value and value != SECRET_MASK
        }

    def _problem(self, text: str, field: str) -> FormProblem:
        text = text.rstrip(".")
        field = "extra_headers" if field == "secret_headers" else field
        if field in self.problem_labels:
            self.show_problem(field, text[:1].upper() + text[1:] + ".")
        return FormProblem(text, field)

    # --- what the form says --------------------------------------------------------------------

    def show_status(self, text: str, tone: str | None) -> None:
        self.status_label.setText(text)
        set_tone(self.status_label, tone)

    def show_problem(self, field: str, text: str | None) -> None:
        label = self.problem_labels[field]
        label.setText(text or "")
        label.setVisible(bool(text))

    def show_key_warning(self, text: str | None) -> None:
        self.key_warning_label.setText(text or "")
        self.key_warning_label.setVisible(bool(text))

    def show_organisation(self, organization_id: str | None) -> None:
        self.organisation_label.setText(f"Organisation: {organization_id}" if organization_id else "")
        self.organisation_label.setVisible(bool(organization_id))

    def set_key_placeholder(self, text: str, *, stored: bool) -> None:
        self.key_edit.setPlaceholderText(text)
        self.aws_secret_edit.setPlaceholderText(text)
        self.remove_key_button.setEnabled(stored)

    # --- reactions -----------------------------------------------------------------------------

    def _on_provider_changed(self) -> None:
        provider = self.current_provider()
        azure = provider.id == "azure"
        vertex = provider.id == "vertex"
        placeholder = {
            "azure": "https://NAME.openai.azure.com",
            "vertex": "https://REGION-aiplatform.googleapis.com",
            "bedrock": "https://bedrock-runtime.REGION.amazonaws.com",
        }
        self.url_edit.setPlaceholderText(placeholder.get(provider.id, provider.default_base_url))
        aws = provider.secret_kind == "aws"
        for rows, shown in ((self._azure_rows, azure), (self._vertex_rows, vertex), (self._aws_rows, aws)):
            for layout in rows:
                self.fields.setRowVisible(layout, shown)  # which shows every widget of the row, notes too
        shown_notes = {"api_version": azure, "deployments": azure, "project": vertex, "location": vertex}
        for field, shown in {**shown_notes, "aws_profile": aws, "region": aws}.items():
            note = self.problem_labels[field]
            note.setVisible(shown and bool(note.text()))
        self.key_edit.setVisible(not aws)  # Bedrock's keys are typed in their own fields
        self.show_key_button.setVisible(not aws)
        self.key_file_button.setVisible(provider.secret_kind == "google")
        key_label = self.fields.labelForField(self._key_field)
        if isinstance(key_label, QLabel):
            key_label.setText({"google": "Service account", "aws": "AWS keys"}.get(provider.secret_kind, "API key"))
        missing = missing_extra(provider)
        self.extra_label.setText(missing or "")
        self.extra_label.setVisible(bool(missing))

    def load_key_file(self, path: str) -> bool:
        """Put the service-account key file at `path` in the key field (as one line); False, with the
        sentence under the field, when it cannot be read or is not such a key."""
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read(1_000_000)
            self.key_edit.setText(one_line(text))
        except (OSError, UnicodeDecodeError):
            self._problem("The key file could not be read", "key")
            return False
        except ValueError as exc:
            self._problem(str(exc), "key")
            return False
        return True

    def _on_aws_key_edited(self) -> None:
        """The three AWS fields, as the one JSON entry the key field (hidden for Bedrock) holds."""
        parts = (self.aws_key_id_edit.text(), self.aws_secret_edit.text(), self.aws_token_edit.text())
        names = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        typed = {name: part.strip() for name, part in zip(names, parts, strict=True) if part.strip()}
        self.key_edit.setText(json.dumps(typed, separators=(",", ":")) if typed else "")

    def _on_key_file_clicked(self) -> None:
        dialog = QFileDialog(self, "Service-account key file", "", "JSON key files (*.json);;All files (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.load_key_file)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _on_show_key_toggled(self, shown: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key_button.setText("Hide" if shown else "Show")

    def _on_key_text_changed(self, text: str) -> None:
        if not text:  # emptied (after Save, or a new form): so are the AWS fields it was made from
            for edit in (self.aws_key_id_edit, self.aws_secret_edit, self.aws_token_edit):
                if edit.text():
                    edit.blockSignals(True)
                    edit.clear()
                    edit.blockSignals(False)
        if not text:
            self.show_key_button.setChecked(False)
        self.show_key_button.setEnabled(bool(text))
        if text.strip():
            self.show_key_warning(None)  # a new key: the warning about the last one no longer applies
        self.show_problem("key", None)


def _with_note(field: QWidget, note: QLabel) -> QVBoxLayout:
    """A field with a line under it for what Save says about it."""
    layout = QVBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    layout.addWidget(field)
    layout.addWidget(note)
    return layout
