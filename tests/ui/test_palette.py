"""The semantic colours: readable in each theme, and followed by what is on screen when it changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextCharFormat
from PySide6.QtWidgets import QApplication, QLabel

from desktop_app.domain.ollama import HostStatus, OllamaHost
from desktop_app.ui.chat.transcript import TranscriptView
from desktop_app.ui.ollama.hosts import HostBar
from desktop_app.ui.theme import apply_theme, colours, dark_palette, light_palette, set_tone

Role = QPalette.ColorRole
TEXT_ROLES = ("error", "ok", "warning", "busy", "muted", "link")
DOTS = ("dot_up", "dot_down", "dot_unknown")


def contrast(a: str | QColor, b: str | QColor) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""

    def luminance(colour: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

        r, g, b_, _ = QColor(colour).getRgbF()
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b_)

    high, low = sorted((luminance(QColor(a)), luminance(QColor(b))), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def theme(qapp) -> Iterator[QApplication]:
    yield qapp
    apply_theme(qapp, "system")  # the QApplication outlives the test


@pytest.mark.parametrize("palette", [dark_palette(), light_palette()], ids=["dark", "light"])
def test_every_role_reads_against_its_background(palette: QPalette) -> None:
    role = colours(palette)
    window, base, text = (palette.color(r) for r in (Role.Window, Role.Base, Role.Text))
    low = []
    for name in TEXT_ROLES:
        for background in (window, base):
            if contrast(getattr(role, name), background) < 4.5:
                low.append(f"{name} on {background.name()}")
    for kind in ("notice", "alert"):
        if contrast(getattr(role, f"{kind}_text"), getattr(role, f"{kind}_background")) < 4.5:
            low.append(f"{kind} banner")
    for background in ("user_block", "code_background"):
        if contrast(text, getattr(role, background)) < 4.5:
            low.append(f"text on {background}")
    for name in DOTS:
        if contrast(getattr(role, name), window) < 3:
            low.append(f"{name} on the window")
    assert low == []


def test_the_dark_roles_are_not_the_light_ones() -> None:
    dark, light = colours(dark_palette()), colours(light_palette())
    assert all(getattr(dark, name) != getattr(light, name) for name in (*TEXT_ROLES, *DOTS, "user_block"))


def test_a_toned_label_follows_a_theme_change(qtbot, theme) -> None:
    label = QLabel("Not saved.")
    qtbot.addWidget(label)
    apply_theme(theme, "light")
    set_tone(label, "error")
    assert colours(light_palette()).error in label.styleSheet()
    apply_theme(theme, "dark")
    assert colours(dark_palette()).error in label.styleSheet()
    set_tone(label, None)
    assert label.styleSheet() == ""
    with pytest.raises(ValueError, match="unknown tone"):
        set_tone(label, "purple")


def _user_frame_background(view: TranscriptView) -> QColor:
    cursor = view.document().find("Is the sky blue?")
    return cursor.currentFrame().frameFormat().background().color()


def _foreground(view: TranscriptView, text: str) -> QColor:
    cursor = view.document().find(text)
    assert not cursor.isNull(), f"{text!r} is not in the transcript"
    return cursor.charFormat().foreground().color()


def _shown_colour(view: TranscriptView, char: QTextCharFormat) -> QColor:
    """The colour text is drawn in: its own, else the view's text colour."""
    brush = char.foreground()
    return brush.color() if brush.style() != Qt.BrushStyle.NoBrush else view.palette().color(Role.Text)


def _link_colours(view: TranscriptView) -> set[str]:
    found, block = set(), view.document().begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            char = fragments.fragment().charFormat()
            if char.isAnchor() and char.anchorHref():
                found.add(char.foreground().color().name())
            fragments += 1
        block = block.next()
    return found


def test_switching_theme_recolours_what_the_transcript_already_shows(qtbot, theme) -> None:
    apply_theme(theme, "light")
    view = TranscriptView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.add_user_message("Is the sky blue?")
    view.add_assistant_message("See [the sky](https://example.org/sky).\n\n```python\nprint(shade)\n```")
    view.show_error("The server could not be reached.", action="Start it, then retry.")
    light, dark = light_palette(), dark_palette()
    text = view.palette().color(Role.Text)
    assert contrast(text, _user_frame_background(view)) >= 4.5
    assert _link_colours(view) == {light.color(Role.Link).name()}  # the link, Copy and Retry
    light_error = _foreground(view, "could not be reached")

    apply_theme(theme, "dark")
    qtbot.waitUntil(lambda: view.palette().color(Role.Base) == dark.color(Role.Base))
    text = view.palette().color(Role.Text)
    assert contrast(text, _user_frame_background(view)) >= 4.5  # "You" reads on the dark theme
    assert _user_frame_background(view).lightness() < 128
    assert _link_colours(view) == {dark.color(Role.Link).name()}
    assert contrast(_foreground(view, "could not be reached"), dark.color(Role.Base)) >= 4.5
    assert _foreground(view, "could not be reached") != light_error
    code = view.document().find("shade")  # unhighlighted code keeps reading on its block's background
    assert contrast(_shown_colour(view, code.charFormat()), code.blockFormat().background().color()) >= 4.5
    html = view.document().toHtml()
    assert light.color(Role.Link).name() not in html and dark.color(Role.Link).name() in html

    view.add_user_message("And at night?")  # what comes after is drawn in the dark theme too
    cursor = view.document().find("And at night?")
    assert cursor.currentFrame().frameFormat().background().color() == _user_frame_background(view)

    apply_theme(theme, "light")
    qtbot.waitUntil(lambda: view.palette().color(Role.Base) == light.color(Role.Base))
    assert _user_frame_background(view).lightness() >= 128
    assert _link_colours(view) == {light.color(Role.Link).name()}
    assert _foreground(view, "could not be reached") == light_error


def test_the_ollama_host_dots_are_redrawn_in_the_new_theme(qtbot, theme) -> None:
    apply_theme(theme, "light")
    bar = HostBar(current=OllamaHost())
    qtbot.addWidget(bar)
    bar.show()
    qtbot.waitExposed(bar)
    bar.set_status(HostStatus(url=OllamaHost().url, reachable=True, version="0.12.6"))

    def dot() -> str:
        return bar.combo.itemIcon(0).pixmap(12, 12).toImage().pixelColor(6, 6).name()

    assert dot() == colours(light_palette()).dot_up
    assert colours(light_palette()).ok in bar.status_label.styleSheet()
    apply_theme(theme, "dark")
    qtbot.waitUntil(lambda: dot() == colours(dark_palette()).dot_up)
    assert colours(dark_palette()).ok in bar.status_label.styleSheet()
