"""Markdown -> the HTML subset QTextDocument understands, and block splitting for streaming."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.util import ClassNotFound

from desktop_app.ui.theme import DARK_COLOURS, LIGHT_COLOURS

__all__ = ["BlockSplitter", "RenderedMarkdown", "render_markdown", "split_complete_blocks"]

LIGHT_CODE_STYLE = "default"
DARK_CODE_STYLE = "monokai"

# Any indentation counts: a fence nested in a list item is still a fence, and guessing "fence"
# wrongly only delays rendering, while guessing "not a fence" would cut a code block in two.
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_SAFE_LINK_PREFIXES = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class RenderedMarkdown:
    html: str
    code_blocks: list[str] = field(default_factory=list)


def _make_parser() -> MarkdownIt:
    # breaks=True: models put single newlines where they mean a line break, and the streamed
    # plain text shows them, so the rendered text should not reflow when it replaces it.
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    # Only web and mail links survive; copy:/retry: are ours, file: and the rest are not the model's.
    md.validateLink = lambda url: url.strip().lower().startswith(_SAFE_LINK_PREFIXES)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    md.add_render_rule("image", _render_image)
    md.add_render_rule(
        "table_open",
        lambda self, tokens, idx, options, env: (
            '<table border="1" cellspacing="0" cellpadding="4"'
            f' style="border-color: {env["table_border"]}; border-style: solid; margin-top: 10px;">\n'
        ),
    )
    return md


def _render_fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    code = token.content.removesuffix("\n")
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    try:
        lexer = get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    style = get_style_by_name(env["code_style"])
    body = highlight(code, lexer, HtmlFormatter(style=style, noclasses=True, nowrap=True))
    index = env["code_index_start"] + len(env["code_blocks"])
    env["code_blocks"].append(code)
    return (
        '<p align="right" style="margin-top: 8px; margin-bottom: 0px; font-size: small;">'
        f'<a href="copy:{index}">Copy</a></p>\n'
        # The block's own text colour: unstyled tokens stay readable on its background in either theme.
        f'<pre style="background-color: {style.background_color}; color: {env["code_text"]}; margin-top: 2px;">'
        f"{body.rstrip(chr(10))}</pre>\n"
    )


def _render_image(self, tokens, idx, options, env) -> str:
    # Never let the view fetch or read an image the model names; show it as a link instead.
    token = tokens[idx]
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = token.attrGet("src") or ""
    if src.lower().startswith(("http://", "https://")):
        return f'<a href="{html.escape(src)}">{alt}</a>'
    return alt


_PARSER = _make_parser()


def render_markdown(source: str, *, code_index_start: int = 0, dark: bool = False) -> RenderedMarkdown:
    """Render model output; raw HTML is escaped and code blocks numbered from code_index_start."""
    env = {
        "code_blocks": [],
        "code_index_start": code_index_start,
        "code_style": DARK_CODE_STYLE if dark else LIGHT_CODE_STYLE,
        "table_border": (DARK_COLOURS if dark else LIGHT_COLOURS).table_border,
        "code_text": (DARK_COLOURS if dark else LIGHT_COLOURS).code_block_text,
    }
    rendered = _PARSER.render(source, env)
    return RenderedMarkdown(html=rendered, code_blocks=env["code_blocks"])


class BlockSplitter:
    """Finds the last blank line outside a code fence in text that arrives piece by piece.

    Each feed() scans only the new text, so a stream pays for every character once.
    """

    def __init__(self) -> None:
        self._partial: list[str] = []  # the current line, not yet ended by "\n"
        self._line_offset = 0  # where the current line starts
        self._fence: tuple[str, int] | None = None
        self.boundary = 0  # just after the last blank line outside a fence; 0 if none
        self.open_fence_start: int | None = None  # where the fence still open began

    def feed(self, text: str) -> None:
        if "\n" not in text:
            self._partial.append(text)
            return
        self._partial.append(text)
        lines = "".join(self._partial).split("\n")
        self._partial = [lines.pop()]
        for line in lines:
            self._line_offset += len(line) + 1
            self._scan_line(line)

    def drop_prefix(self, length: int) -> None:
        """Forget the first `length` characters (they have been rendered)."""
        self._line_offset -= length
        self.boundary = max(0, self.boundary - length)
        if self.open_fence_start is not None:
            self.open_fence_start -= length

    def _scan_line(self, line: str) -> None:
        match = _FENCE_RE.match(line)
        if self._fence is not None:
            marker, rest = (match.group(1), match.group(2)) if match else ("", "")
            fence_char, fence_length = self._fence
            if marker[:1] == fence_char and len(marker) >= fence_length and not rest.strip():
                self._fence = self.open_fence_start = None
        elif match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            self._fence = (match.group(1)[0], len(match.group(1)))
            self.open_fence_start = self._line_offset - len(line) - 1
        elif not line.strip():
            self.boundary = self._line_offset


def split_complete_blocks(source: str) -> tuple[str, str]:
    """Split at the last blank line that is not inside an open fence: (complete, tail)."""
    splitter = BlockSplitter()
    splitter.feed(source)
    return source[: splitter.boundary], source[splitter.boundary :]
