"""Colours are decided in one place: no colour literal in desktop_app/ui outside the palette module."""

from __future__ import annotations

import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "desktop_app" / "ui"
PALETTE_MODULE = UI / "theme.py"
# '#rrggbb' / '#rrggbbaa', a named colour in a style sheet or QColor, or a fixed Qt colour.
LITERALS = re.compile(
    r"#[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?\b"
    r"|QColor\(\s*['\"][a-zA-Z]+['\"]"
    r"|(?:color|background(?:-color)?|border(?:-color)?)\s*:[^;{}\"']*\b(?:red|green|blue|black|white|gr[ae]y|yellow|orange)\b"
    r"|GlobalColor\.(?!transparent\b)\w+"
)


def test_no_colour_literal_outside_the_palette_module() -> None:
    found = [
        f"{path.relative_to(UI)}:{number}: {line.strip()}"
        for path in sorted(UI.rglob("*.py"))
        if path != PALETTE_MODULE
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if LITERALS.search(line)
    ]
    assert found == []


def test_the_check_sees_each_kind_of_literal() -> None:
    for line in (
        'ERROR = "#c0392b"',
        'QColor("red")',
        '"QLabel { color: white; }"',
        "painter.setPen(Qt.GlobalColor.red)",
    ):
        assert LITERALS.search(line), line
    assert not LITERALS.search("pixmap.fill(Qt.GlobalColor.transparent)")
