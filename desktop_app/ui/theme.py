"""Light and dark palettes, "follow the system", and the application icon.

`apply_theme(app, "system" | "light" | "dark")`. In "system" mode the platform's own palette is
used (so a desktop with its own colours keeps them) and followed when the desktop switches between
light and dark (`QStyleHints.colorSchemeChanged`); if the platform reports a dark scheme but only
offers a light palette (Fusion on a bare X11 session, for one), ModelDesk's dark palette stands in.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup

# (role, active/inactive colour, disabled colour)
_LIGHT = (
    (_Role.Window, "#f3f4f6", "#f3f4f6"),
    (_Role.WindowText, "#1f2328", "#8c959f"),
    (_Role.Base, "#ffffff", "#f6f8fa"),
    (_Role.AlternateBase, "#f6f8fa", "#f6f8fa"),
    (_Role.ToolTipBase, "#1f2328", "#1f2328"),
    (_Role.ToolTipText, "#ffffff", "#ffffff"),
    (_Role.PlaceholderText, "#6e7781", "#a0a7b0"),
    (_Role.Text, "#1f2328", "#8c959f"),
    (_Role.Button, "#eaecef", "#eef0f2"),
    (_Role.ButtonText, "#1f2328", "#8c959f"),
    (_Role.BrightText, "#cf222e", "#cf222e"),
    (_Role.Light, "#ffffff", "#ffffff"),
    (_Role.Midlight, "#f0f1f3", "#f0f1f3"),
    (_Role.Mid, "#c4c9d0", "#d0d7de"),
    (_Role.Dark, "#9ea5ad", "#afb8c1"),
    (_Role.Shadow, "#6e7781", "#8c959f"),
    (_Role.Highlight, "#2563eb", "#c4c9d0"),
    (_Role.HighlightedText, "#ffffff", "#f6f8fa"),
    (_Role.Link, "#0b5cd5", "#8c959f"),
    (_Role.LinkVisited, "#7c3aed", "#8c959f"),
    (_Role.Accent, "#2563eb", "#c4c9d0"),
)
_DARK = (
    (_Role.Window, "#1e2127", "#1e2127"),
    (_Role.WindowText, "#e6e8eb", "#6b727c"),
    (_Role.Base, "#16181d", "#1b1e23"),
    (_Role.AlternateBase, "#23272e", "#23272e"),
    (_Role.ToolTipBase, "#2d323a", "#2d323a"),
    (_Role.ToolTipText, "#e6e8eb", "#e6e8eb"),
    (_Role.PlaceholderText, "#8b929c", "#5c636c"),
    (_Role.Text, "#e6e8eb", "#6b727c"),
    (_Role.Button, "#2b3038", "#24282e"),
    (_Role.ButtonText, "#e6e8eb", "#6b727c"),
    (_Role.BrightText, "#ff7b72", "#ff7b72"),
    (_Role.Light, "#3a4049", "#3a4049"),
    (_Role.Midlight, "#323841", "#323841"),
    (_Role.Mid, "#262a31", "#262a31"),
    (_Role.Dark, "#121418", "#121418"),
    (_Role.Shadow, "#000000", "#000000"),
    (_Role.Highlight, "#3b82f6", "#3a4049"),
    (_Role.HighlightedText, "#ffffff", "#9aa1ab"),
    (_Role.Link, "#6cb6ff", "#6b727c"),
    (_Role.LinkVisited, "#c39bff", "#6b727c"),
    (_Role.Accent, "#3b82f6", "#3a4049"),
)


def _palette(spec) -> QPalette:
    palette = QPalette()
    for role, normal, disabled in spec:
        for group in (_Group.Active, _Group.Inactive):
            palette.setColor(group, role, QColor(normal))
        palette.setColor(_Group.Disabled, role, QColor(disabled))
    return palette


def light_palette() -> QPalette:
    return _palette(_LIGHT)


def dark_palette() -> QPalette:
    return _palette(_DARK)


def is_dark(palette: QPalette) -> bool:
    return palette.color(_Role.Window).lightness() < 128


class _ThemeController(QObject):
    """Holds the chosen mode and, in "system" mode, follows the desktop's colour scheme."""

    def __init__(self, app: QGuiApplication) -> None:
        super().__init__(app)
        self._app = app
        self.mode = "system"
        app.styleHints().colorSchemeChanged.connect(self._on_style_hints_color_scheme_changed)

    def apply(self, mode: str) -> None:
        if mode not in THEMES:
            raise ValueError(f"unknown theme {mode!r}; expected one of {', '.join(THEMES)}")
        self.mode = mode
        hints = self._app.styleHints()
        if mode == "system":
            hints.unsetColorScheme()
            self._follow_system()
            return
        # Asking the platform for the scheme too gives native parts (title bars on Windows and
        # macOS) the same colours where the platform supports it.
        hints.setColorScheme(Qt.ColorScheme.Dark if mode == "dark" else Qt.ColorScheme.Light)
        self._set_palette(dark_palette() if mode == "dark" else light_palette())

    def _set_palette(self, palette: QPalette) -> None:
        self._app.setPalette(palette)
        _refresh_style_sheets(self._app)

    def _follow_system(self) -> None:
        # An empty palette resolves every role from the platform's, and keeps following it.
        self._app.setPalette(QPalette())
        scheme = self._app.styleHints().colorScheme()
        platform_dark = is_dark(self._app.palette())
        if scheme == Qt.ColorScheme.Dark and not platform_dark:
            self._app.setPalette(dark_palette())
        elif scheme == Qt.ColorScheme.Light and platform_dark:
            self._app.setPalette(light_palette())
        _refresh_style_sheets(self._app)

    def _on_style_hints_color_scheme_changed(self, _scheme) -> None:
        if self.mode == "system":
            self._follow_system()


def _refresh_style_sheets(app: QGuiApplication) -> None:
    """Re-read style sheets that use palette(...) colours: Qt resolves those only when polishing.

    The new palette reaches widgets through posted events; they are delivered first, so the
    sheets are re-read against it.
    """
    if not isinstance(app, QApplication):
        return
    QCoreApplication.sendPostedEvents(None, QEvent.Type.ApplicationPaletteChange)
    if "palette(" in app.styleSheet():
        app.setStyleSheet(app.styleSheet())
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if "palette(" in sheet:
            widget.setStyleSheet(sheet)


def apply_theme(app: QGuiApplication, mode: str) -> None:
    """Switch the whole application to `mode` ("system", "light" or "dark") at once."""
    controller = app.findChild(_ThemeController)
    if controller is None:
        controller = _ThemeController(app)
    controller.apply(mode)


def current_theme(app: QGuiApplication) -> str:
    controller = app.findChild(_ThemeController)
    return controller.mode if controller is not None else "system"


# --- the icon ------------------------------------------------------------------------------------

def resources_dir() -> Path | None:
    """The `resources/` folder: next to the package in a checkout, inside the bundle when frozen."""
    candidates = [Path(__file__).resolve().parents[2] / "resources"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "resources")
    # Installed from a wheel: pyproject's data-files put the icons under <prefix>/share.
    candidates.append(Path(sys.prefix) / "share")
    return next((c for c in candidates if (c / "icons" / "hicolor").is_dir()), None)


def app_icon() -> QIcon:
    """ModelDesk's icon from its own files (every rendered size plus the SVG), else the theme's."""
    icon = QIcon()
    root = resources_dir()
    if root is not None:
        for size in ICON_SIZES:
            png = root / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "modeldesk.png"
            if png.is_file():
                icon.addFile(str(png))
        for svg in (root / "modeldesk.svg", root / "icons" / "hicolor" / "scalable" / "apps" / "modeldesk.svg"):
            if svg.is_file():
                icon.addFile(str(svg))
                break
    if icon.isNull():
        icon = QIcon.fromTheme("modeldesk")
    return icon
