"""The chat transcript: markdown rendering, streaming appends, code copy, errors and scrolling."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QTextCursor

from desktop_app.ui.chat.markdown import render_markdown, split_complete_blocks
from desktop_app.ui.chat.transcript import PLAIN_BLOCK_CHARS, TranscriptView

CODE = 'def greet(name: str) -> str:\n    return f"Hello, {name}"'


@pytest.fixture
def view(qtbot) -> TranscriptView:
    widget = TranscriptView()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _format_of(view: TranscriptView, text: str):
    cursor = view.document().find(text)
    assert not cursor.isNull(), f"{text!r} is not in the transcript"
    return cursor.charFormat()


def _families(view: TranscriptView, text: str) -> list[str]:
    return _format_of(view, text).fontFamilies() or []


def _heading_texts(view: TranscriptView) -> list[str]:
    block, found = view.document().begin(), []
    while block.isValid():
        if block.blockFormat().headingLevel():
            found.append(block.text())
        block = block.next()
    return found


def test_user_and_assistant_messages_appear(view):
    view.add_user_message("Is <b>this</b> bold?")
    assert view.plain_text_of_last_message() == "Is <b>this</b> bold?"  # plain text, not HTML
    view.add_assistant_message("No, it is **escaped**.", footer="12 tokens · 40.0 tok/s", note="Stopped")
    shown = view.toPlainText()
    for expected in (
        "You",
        "Is <b>this</b> bold?",
        "Assistant",
        "No, it is escaped.",
        "Stopped",
        "12 tokens · 40.0 tok/s",
    ):
        assert expected in shown
    assert shown.index("You") < shown.index("Assistant") < shown.index("Stopped") < shown.index("12 tokens")
    assert view.plain_text_of_last_message() == "No, it is escaped."
    assert view.character_count() == len(shown)


def test_streaming_appends_exact_text_one_small_change_per_token(view):
    tokens = [f"w{i} " + ("\n" if i % 20 == 19 else "") for i in range(500)]
    view.begin_assistant_message()
    view.append_text(tokens[0])  # also opens the message's first paragraph
    changes = []
    view.document().contentsChange.connect(lambda pos, removed, added: changes.append((pos, removed, added)))
    for token in tokens[1:]:
        view.append_text(token)
    assert view.plain_text_of_last_message() == "".join(tokens)
    # Each token is one insertion of its own length at the end: nothing else is touched.
    assert len(changes) == len(tokens) - 1
    assert all(removed == 0 and added == len(token) for (_, removed, added), token in zip(changes, tokens[1:]))
    assert all(pos + added == end for (pos, _, added), (end, _, _) in itertools.pairwise(changes))
    assert changes[-1][0] + changes[-1][2] == view.character_count()


def test_completed_blocks_render_while_streaming_and_the_rest_on_finish(view, qtbot):
    view.begin_assistant_message()
    for piece in ("# Plan", "\n\nFirst ", "**step** done\n\nstill **typ", "ing**"):
        view.append_text(piece)
    qtbot.waitUntil(lambda: _heading_texts(view) == ["Plan"])
    shown = view.toPlainText()
    assert "# Plan" not in shown and "First step done" in shown  # rendered up to the blank line
    assert "still **typing**" in shown  # the unfinished paragraph stays plain until finish
    view.finish_assistant_message(footer="3 tokens")
    assert view.plain_text_of_last_message() == "Plan\nFirst step done\nstill typing"
    assert _format_of(view, "typing").fontWeight() == QFont.Weight.Bold
    assert _format_of(view, "step").fontWeight() == QFont.Weight.Bold
    assert _format_of(view, "done").fontWeight() != QFont.Weight.Bold


def test_code_still_streaming_is_monospaced_and_highlighted_once_closed(view, qtbot):
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
    view.begin_assistant_message()
    view.append_text("Try this:\n```python\nimport os\n")
    qtbot.waitUntil(lambda: mono in _families(view, "import os"))
    view.append_text("print(os.sep)\n")
    assert mono in _families(view, "print")  # later tokens too, at once
    assert mono not in _families(view, "Try this")
    view.append_text("```\n\nAfter.")
    qtbot.waitUntil(lambda: _format_of(view, "import").foreground().color().name() == "#008000")
    assert view.toPlainText().rstrip().endswith("print(os.sep)\nAfter.")
    assert mono not in _families(view, "After")


def _blocks_after(view: TranscriptView, text: str) -> list[str]:
    block = view.document().find(text).block()
    blocks = []
    while block.isValid():
        blocks.append(block.text())
        block = block.next()
    return blocks


@pytest.mark.parametrize("token", [" word", "word "], ids=["leading-space", "trailing-space"])
def test_a_long_line_streams_in_short_blocks_and_finishes_as_one_paragraph(view, qtbot, token):
    # Qt lays out the block an insertion lands in again whole: one 12,000-character block would
    # make each late append ~25 times dearer than an early one.
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
    tokens = ["Start"] + [f"{token}{i}" if token[0] == " " else f"w{i} " for i in range(2000)]
    tokens += ["\n```\ncode line\n"]
    view.begin_assistant_message()
    for piece in tokens:
        view.append_text(piece)
    blocks = _blocks_after(view, "Start")
    line = blocks[: blocks.index("```")]
    assert len(line) > 5 and max(len(b) for b in line) <= PLAIN_BLOCK_CHARS + len(tokens[-2])
    assert " ".join(line).split() == "".join(tokens[:-1]).split()  # cut at spaces only
    qtbot.waitUntil(lambda: mono in _families(view, "code line"))  # the fence still found after the cuts
    assert mono not in _families(view, "Start")
    view.finish_assistant_message()
    paragraph = view.document().find("Start").block().text()
    assert paragraph == "".join(tokens[:-1]).strip()


def test_finish_renders_markdown(view):
    view.begin_assistant_message()
    for ch in "Some **bold** and *italic* text\n- one\n- two":
        view.append_text(ch)
    view.finish_assistant_message(footer="done")
    assert _format_of(view, "bold").fontWeight() == QFont.Weight.Bold
    assert _format_of(view, "italic").fontItalic()
    assert "**" not in view.toPlainText()
    assert view.document().find("one").block().textList() is not None
    assert "font-weight:700" in view.toHtml().replace(" ", "")


def test_code_block_is_highlighted_and_copy_puts_exactly_the_code_on_the_clipboard(view, qtbot):
    rendered = render_markdown(f"```python\n{CODE}\n```")
    assert rendered.code_blocks == [CODE]
    assert '<a href="copy:0">Copy</a>' in rendered.html
    assert '<span style="color: #008000; font-weight: bold">def</span>' in rendered.html  # Pygments inline
    view.add_assistant_message(f"Here:\n\n```python\n{CODE}\n```\n\nDone.")
    keyword = _format_of(view, "def")
    assert keyword.foreground().color().name() == "#008000" and keyword.fontWeight() == QFont.Weight.Bold
    assert _format_of(view, "Copy").anchorHref() == "copy:0"
    QGuiApplication.clipboard().setText("something else")
    with qtbot.waitSignal(view.code_copied) as blocker:
        view.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == CODE
    assert blocker.args == [CODE]


def test_code_blocks_are_numbered_across_messages_and_streaming(view, qtbot):
    view.add_assistant_message("```\nfirst()\n```")
    view.begin_assistant_message()
    for ch in "Again:\n\n```sh\necho second\n\necho still second\n```\n\nbye":
        view.append_text(ch)
    view.finish_assistant_message()
    with qtbot.waitSignal(view.code_copied) as blocker:
        view.anchorClicked.emit(QUrl("copy:1"))
    assert blocker.args == ["echo second\n\necho still second"]
    assert QGuiApplication.clipboard().text() == "echo second\n\necho still second"
    with qtbot.assertNotEmitted(view.code_copied):
        view.anchorClicked.emit(QUrl("copy:7"))  # no such block: nothing happens


def test_unknown_language_is_plain_code(view):
    rendered = render_markdown("```no-such-language\nx <y>\n```")
    assert rendered.code_blocks == ["x <y>"]
    assert "x &lt;y&gt;</pre>" in rendered.html


def test_raw_html_from_the_model_is_escaped(view):
    script = "<script>alert('x')</script> <img src=x onerror=alert(1)>"
    assert "<script>" not in render_markdown(script).html
    view.add_assistant_message(script)
    assert view.plain_text_of_last_message() == script
    view.begin_assistant_message()
    view.append_text("<b>not bold</b>\n\n")
    view.append_text("<i>not italic</i>")
    view.finish_assistant_message()
    assert view.plain_text_of_last_message() == "<b>not bold</b>\n<i>not italic</i>"
    assert _format_of(view, "not bold").fontWeight() != QFont.Weight.Bold


def test_links_keep_web_targets_only(view):
    html = render_markdown("[docs](https://example.org/a) [bad](javascript:alert(1)) [ours](copy:0)").html
    assert '<a href="https://example.org/a">docs</a>' in html
    assert 'href="javascript' not in html
    assert 'href="copy:0"' not in html  # the model cannot plant a Copy or Retry action


def test_show_error_keeps_the_partial_text_and_retry_emits(view, qtbot):
    view.add_user_message("Explain recursion")
    view.begin_assistant_message()
    view.append_text("Recursion is when a function ")
    view.append_text("calls itself")
    view.show_error("The connection to the server was lost.", action="Check that the server is running.")
    shown = view.toPlainText()
    assert "Explain recursion" in shown
    assert "Recursion is when a function calls itself" in shown
    assert "The connection to the server was lost. Check that the server is running.  Retry" in shown
    assert _format_of(view, "Retry").anchorHref() == "retry:"
    with qtbot.waitSignal(view.retry_requested):
        view.anchorClicked.emit(QUrl("retry:"))
    view.show_error("Still down.", retry=False)
    assert view.toPlainText().rstrip().endswith("Still down.")


def test_reasoning_is_shown_apart_from_the_answer(view):
    view.begin_assistant_message()
    view.append_reasoning("The user wants ")
    view.append_reasoning("a short answer.")
    view.append_text("Four.")
    view.append_reasoning(" Maybe add why.")  # late reasoning still lands before the answer
    view.append_text(" Because 2+2.")
    assert view.plain_text_of_last_message() == "Four. Because 2+2."
    view.finish_assistant_message()
    view.anchorClicked.emit(QUrl("thinking:0"))  # folded once the answer started: opened again
    shown = view.toPlainText()
    assert shown.index("The user wants a short answer. Maybe add why.") < shown.index("Four. Because 2+2.")
    assert _format_of(view, "short answer").fontItalic()
    assert view.plain_text_of_last_message() == "Four. Because 2+2."


def test_view_follows_the_stream_only_when_at_the_bottom(view, qtbot):
    bar = view.verticalScrollBar()
    view.begin_assistant_message()
    for i in range(80):
        view.append_text(f"line {i}\n")
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bar.setValue(0)  # the reader scrolls up
    old_maximum = bar.maximum()
    for i in range(80):
        view.append_text(f"more {i}\n")
    qtbot.waitUntil(lambda: bar.maximum() > old_maximum)
    assert bar.value() == 0
    bar.setValue(bar.maximum())  # back at the bottom: follows again
    old_maximum = bar.maximum()
    for i in range(40):
        view.append_text(f"again {i}\n")
    qtbot.waitUntil(lambda: bar.maximum() > old_maximum and bar.value() == bar.maximum())


def test_clear_transcript_starts_over(view, qtbot):
    view.add_user_message("old")
    view.add_assistant_message("```\ncode\n```")
    view.begin_assistant_message()
    view.append_text("unfinished")
    view.clear_transcript()
    assert view.toPlainText().strip() == "" and view.plain_text_of_last_message() == ""
    view.add_assistant_message("```\nnew\n```")
    with qtbot.waitSignal(view.code_copied) as blocker:
        view.anchorClicked.emit(QUrl("copy:0"))
    assert blocker.args == ["new"]


def test_finished_messages_leave_the_document_root_to_few_frames(view):
    for i in range(30):
        view.add_user_message(f"question {i}")
        view.begin_assistant_message()
        view.append_text(f"| a | b |\n|---|---|\n| cell{i} | x |\n\n")
        view.finish_assistant_message()
    # Qt's layout walks the root's child frames on every edit; tables and user messages must
    # not pile up there or each token would cost more as the chat grows.
    assert len(view.document().rootFrame().childFrames()) == 1
    assert view.document().find("question 29").currentFrame().parentFrame() is not None
    assert QTextCursor(view.document().find("cell29").block()).currentTable() is not None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ("", "")),
        ("no boundary yet", ("", "no boundary yet")),
        ("one line\n", ("", "one line\n")),
        ("para one\n\npara two", ("para one\n\n", "para two")),
        ("a\n\nb\n\nc", ("a\n\nb\n\n", "c")),
        ("a\n\n", ("a\n\n", "")),
        ("a\n  \nb", ("a\n  \n", "b")),
        ("intro\n\n```python\nx = 1\n\ny = 2\n", ("intro\n\n", "```python\nx = 1\n\ny = 2\n")),
        ("```\ncode\n\nmore\n```\n\nafter", ("```\ncode\n\nmore\n```\n\n", "after")),
        ("```\ncode\n```\nafter", ("", "```\ncode\n```\nafter")),
        ("~~~\n\n```\n\n", ("", "~~~\n\n```\n\n")),  # a ``` line does not close a ~~~ fence
        ("````\n```\n\n````\n\nz", ("````\n```\n\n````\n\n", "z")),
        ("```py\n\n```not a close\n\n", ("", "```py\n\n```not a close\n\n")),
        ("- item\n\n  ```\n  code\n\n  ```\n\nend", ("- item\n\n  ```\n  code\n\n  ```\n\n", "end")),
    ],
)
def test_split_complete_blocks(source, expected):
    assert split_complete_blocks(source) == expected
    complete, tail = split_complete_blocks(source)
    assert complete + tail == source


LONG_REPLY = (
    "# Plan\n\nFirst **step** done.\n\n```python\nprint(1)\n```\n\n"
    + "".join(f"w{i} " for i in range(3000))
    + "\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\nThe *end*."
)


@pytest.mark.parametrize("rendered_while_streaming", [False, True], ids=["all-at-the-end", "partly-live"])
def test_a_long_reply_finishes_as_the_same_document_as_a_stored_one(qtbot, rendered_while_streaming):
    # The end of a stream renders its plain tail straight into the history (one layout, not two):
    # what the user then sees is exactly the reply as it shows when reopened.
    views = []
    for _ in range(2):
        widget = TranscriptView(render_interval_ms=1 if rendered_while_streaming else 3_600_000)
        qtbot.addWidget(widget)
        widget.resize(300, 400)
        widget.add_user_message("go")
        views.append(widget)
    streamed, stored = views
    streamed.begin_assistant_message()
    pieces = [LONG_REPLY[i : i + 7] for i in range(0, len(LONG_REPLY), 7)]
    for i, piece in enumerate(pieces):
        streamed.append_text(piece)
        if rendered_while_streaming and i == len(pieces) // 2:
            qtbot.waitUntil(lambda: _heading_texts(streamed) == ["Plan"])
    streamed.finish_assistant_message(footer="3000 tokens")
    stored.add_assistant_message(LONG_REPLY, footer="3000 tokens")
    assert streamed.toHtml() == stored.toHtml()
    assert streamed.plain_text_of_last_message() == stored.plain_text_of_last_message()
    assert streamed._code_blocks == stored._code_blocks == ["print(1)"]
    streamed.add_user_message("next")  # and the next message still goes after it
    assert streamed.plain_text_of_last_message() == "next"
    assert streamed.toPlainText().index("The end.") < streamed.toPlainText().index("next")
