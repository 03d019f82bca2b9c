"""Light and dark palettes, "follow the system", and the application icon.

`apply_theme(app, "system" | "light" | "dark")`. In "system" mode the platform's own palette is
used (so a desktop with its own colours keeps them) and followed when the desktop switches between
light and dark (`QStyleHints.colorSchemeChanged`); if the platform reports a dark scheme but only
offers a light palette (Fusion on a bare X11 session, for one), ModelDesk's dark palette stands in.

`colours()` gives the semantic colours (error text, banners, status dots...) of the active theme:
the one place panes take colours from.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QWidget

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


# --- semantic colours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Colours:
    """What a colour means, with one value per theme. Text roles read on the window and base colours."""

    error: str  # error text
    ok: str  # success text
    warning: str  # warning text
    busy: str  # something under way (loading, cooling down)
    muted: str  # secondary text: reasoning, footers
    link: str
    notice_background: str  # an informative banner ("the store is read-only")
    notice_text: str
    notice_border: str
    alert_background: str  # a failure banner (a server crashed)
    alert_text: str
    alert_border: str
    dot_up: str  # status dots: answers / down / not checked yet
    dot_down: str
    dot_unknown: str
    user_block: str  # background of the user's messages in the transcript (text: palette Text)
    code_background: str  # inline code in the transcript
    code_block_text: str  # unhighlighted text in a code block, on the highlighting style's background
    table_border: str


LIGHT_COLOURS = Colours(
    error="#c0392b",
    ok="#1e7b34",
    warning="#9a5b00",
    busy="#b45309",
    muted="#656d76",
    link="#0b5cd5",
    notice_background="#fff4ce",
    notice_text="#4d3b00",
    notice_border="#e3c55a",
    alert_background="#fdecea",
    alert_text="#5f1d16",
    alert_border="#e6a19a",
    dot_up="#2e7d32",
    dot_down="#c0392b",
    dot_unknown="#6e7781",
    user_block="#e9effd",
    code_background="#e9eaeb",
    code_block_text="#1f2328",
    table_border="#8c959f",
)
DARK_COLOURS = Colours(
    error="#ff7b72",
    ok="#56d364",
    warning="#e3b341",
    busy="#f0883e",
    muted="#9ba3ad",
    link="#6cb6ff",
    notice_background="#3b2e0a",
    notice_text="#f2dc9b",
    notice_border="#7a6420",
    alert_background="#3d1c1a",
    alert_text="#ffc9c2",
    alert_border="#8e3b33",
    dot_up="#3fb950",
    dot_down="#f85149",
    dot_unknown="#8b929c",
    user_block="#1f2b3f",
    code_background="#2b3038",
    code_block_text="#f8f8f2",
    table_border="#5c636c",
)
TONES = tuple(f.name for f in fields(Colours))
_SHEET_PROPERTY = "modeldeskThemedSheet"


def colours(palette: QPalette | None = None) -> Colours:
    """The semantic colours for `palette` (by default the application's): dark or light."""
    if palette is None:
        palette = QGuiApplication.palette()
    return DARK_COLOURS if is_dark(palette) else LIGHT_COLOURS


def set_themed_style_sheet(widget: QWidget, template: str) -> None:
    """Give `widget` a style sheet whose `{role}` fields are filled from `colours()`.

    The template is kept on the widget and filled again whenever the theme changes.
    """
    widget.setProperty(_SHEET_PROPERTY, template)
    widget.setStyleSheet(template.format_map(vars(colours())) if template else "")


def set_tone(widget: QWidget, tone: str | None) -> None:
    """Colour a label's text by what it says ("error", "ok", "warning", "busy"); None for plain."""
    if tone is not None and tone not in TONES:
        raise ValueError(f"unknown tone {tone!r}")
    set_themed_style_sheet(widget, f"color: {{{tone}}};" if tone else "")


def banner_style(selector: str, kind: str = "notice", padding: str = "8px 10px") -> str:
    """A style sheet template for a notice ("notice") or failure ("alert") banner."""
    # Doubled braces are the style sheet's own; single ones are roles filled by the theme.
    return (
        selector + " {{ background: {" + kind + "_background}; color: {" + kind + "_text};"
        " border: 1px solid {" + kind + "_border}; border-radius: 4px; padding: " + padding + "; }}"
    )


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
    """Re-read style sheets that use palette(...) colours (Qt resolves those only when polishing)
    and refill those set with `set_themed_style_sheet`.

    The new palette reaches widgets through posted events; they are delivered first, so the
    sheets are re-read against it.
    """
    if not isinstance(app, QApplication):
        return
    QCoreApplication.sendPostedEvents(None, QEvent.Type.ApplicationPaletteChange)
    if "palette(" in app.styleSheet():
        app.setStyleSheet(app.styleSheet())
    for widget in app.allWidgets():
        template = widget.property(_SHEET_PROPERTY)
        if template is not None:
            set_themed_style_sheet(widget, template)
            continue
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
