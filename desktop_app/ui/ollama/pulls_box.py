"""The Ollama pane's pull box: the name to pull, and the list of pulls with their progress.

Each row of the pane's `PullJobsModel` is painted by `PullJobDelegate` (bar, bytes, speed, time
left, layers and the row's buttons); a sentence stands in for the list while it is empty. The pane
starts, cancels and forgets the pulls; this module only builds the box.
"""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.ollama.delegate import PullJobDelegate
from desktop_app.ui.ollama.models import PullJobsModel

NO_PULLS_HINT = "Pulls appear here with their progress."


class PullsBox(QWidget):
    """The name field and Pull button above the pulls of `model`, or the hint while there are none."""

    def __init__(self, *, model: PullJobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(objectName="pullName", placeholderText="Model to pull, e.g. qwen2.5:0.5b")
        self.button = QPushButton("Pull", objectName="pull", toolTip="Download the model into Ollama")
        pull_row = QHBoxLayout()
        pull_row.addWidget(self.edit, 1)
        pull_row.addWidget(self.button)
        self.view = QListView(objectName="pullJobs")
        self.view.setModel(model)
        self.delegate = PullJobDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setUniformItemSizes(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setMouseTracking(True)
        self.hint = QLabel(NO_PULLS_HINT, objectName="pullsHint", wordWrap=True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pull_row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.hint)
