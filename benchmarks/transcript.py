"""How much one streamed token costs the transcript, in a short chat and in a long one.

Run from the repository root: python benchmarks/transcript.py
Prints `key: value` lines. append_cost_ratio = append_us_at_200k / append_us_at_2k; the
transcript's promise is that this stays near 1 (target <= 1.5).

Each token is appended to a live assistant message; every 50 appends the event loop runs, as it
would between network reads, which paints the view and lets the markdown render fire. The render
throttle is set to 0 ms here so that a render can happen at each of those points (in the app it
waits 150 ms, which a tight loop would never reach); its cost is thus part of the per-token figure.

The append_us figures are CPU time of this process (painting is offscreen and in-process, so that
is all the work), which other programs on a busy machine barely disturb; the *_wall_* lines give
the same runs by the clock. The two sizes alternate, so drifting load hits both alike.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from typing import Self

from _common import ROOT, drops_none_references, print_figures

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT))

import PySide6
from PySide6.QtWidgets import QApplication

from desktop_app.ui.chat.transcript import TranscriptView

APPENDS = 2_000
EVENTS_EVERY = 50
REPETITIONS = 7
TOKEN = "tok "
SIZES = (2_000, 200_000)

FINISHED_ANSWER = """## Section {n}

Some **bold** words, some *emphasis* and `inline code` in a paragraph that goes on for a while
so that it wraps across the width of the view like a real answer would.

- first point of the list
- second point, with a [link](https://example.org/{n})
- third point

```python
def step_{n}(values: list[int]) -> int:
    total = 0
    for value in values:
        total += value * {n}
    return total
```

| Key | Value |
|-----|-------|
| a   | {n}   |

"""


def token_stream():
    """'tok ' tokens, a newline about every 80 characters and a blank line every 6 lines."""
    column = line = 0
    while True:
        text = TOKEN
        column += len(TOKEN)
        if column >= 80:
            line += 1
            column = 0
            text += "\n\n" if line % 6 == 0 else "\n"
        yield text


class Stopwatch:
    def __enter__(self) -> Self:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def settle(app: QApplication, view: TranscriptView) -> None:
    view.document().documentLayout().documentSize()  # finishes any lazy layout
    for _ in range(3):
        app.processEvents()


def build(app: QApplication, view: TranscriptView, target_chars: int) -> None:
    """Finished exchanges, then a live message that makes up about a fifth of the text."""
    view.clear_transcript()
    n = 0
    live_chars = min(target_chars // 5, 40_000)
    while view.character_count() < target_chars - live_chars - 500:
        n += 1
        view.add_user_message(f"Question number {n}: how does step {n} work?")
        view.add_assistant_message(FINISHED_ANSWER.format(n=n) * 4, footer="812 tokens · 41.2 tok/s · 19.7 s")
    view.add_user_message("Now the long one, please.")
    view.begin_assistant_message()
    tokens = token_stream()
    appended = 0
    while view.character_count() < target_chars:
        view.append_text(next(tokens))
        appended += 1
        if appended % EVENTS_EVERY == 0:
            app.processEvents()
    settle(app, view)


def time_appends(app: QApplication, view: TranscriptView, *, with_events: bool) -> Stopwatch:
    tokens = token_stream()
    with Stopwatch() as watch:
        for i in range(1, APPENDS + 1):
            view.append_text(next(tokens))
            if with_events and i % EVENTS_EVERY == 0:
                app.processEvents()
        if with_events:
            app.processEvents()
    return watch


def time_render(app: QApplication, view: TranscriptView) -> Stopwatch:
    """One render of a freshly completed paragraph in the live message."""
    for _ in range(EVENTS_EVERY):
        view.append_text(TOKEN)
    view.append_text("\n\n")
    with Stopwatch() as watch:
        app.processEvents()
    return watch


def time_finish(app: QApplication, view: TranscriptView) -> Stopwatch:
    """Finishing the live message: render its tail and move it into the history."""
    with Stopwatch() as watch:
        view.finish_assistant_message(footer="2000 tokens · 50.0 tok/s")
        app.processEvents()
    return watch


def measure_once(app: QApplication, view: TranscriptView, target_chars: int) -> dict[str, float]:
    build(app, view, target_chars)
    chars = view.character_count()
    streamed = time_appends(app, view, with_events=True)
    settle(app, view)
    bare = time_appends(app, view, with_events=False)
    settle(app, view)
    render = time_render(app, view)
    settle(app, view)
    finish = time_finish(app, view)
    per_append = 1e6 / APPENDS
    return {
        "chars": chars,
        "append_us": streamed.cpu * per_append,
        "append_wall_us": streamed.wall * per_append,
        "append_only_us": bare.cpu * per_append,
        "render_ms": render.cpu * 1e3,
        "finish_ms": finish.cpu * 1e3,
    }


def measure(app: QApplication, view: TranscriptView) -> list[dict[str, float]]:
    """The median of each figure per size, the sizes taking turns."""
    runs: list[list[dict[str, float]]] = [[] for _ in SIZES]
    for _ in range(REPETITIONS):
        for runs_of_size, size in zip(runs, SIZES):
            runs_of_size.append(measure_once(app, view, size))
    return [
        {key: statistics.median(run[key] for run in runs_of_size) for key in runs_of_size[0]} for runs_of_size in runs
    ]


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    leaks = drops_none_references()
    if leaks:
        # Without this the run ends in "Fatal Python error: none_dealloc" long before it is done.
        # The references are only held, so the timings are unaffected.
        keep_none_alive = [None] * 20_000_000  # noqa: F841
        gc.freeze()  # and the collector never walks that list
    view = TranscriptView(render_interval_ms=0)
    view.resize(900, 700)
    view.show()
    measure_once(app, view, SIZES[0])  # warm-up: fonts, Pygments lexers, caches
    small, big = measure(app, view)
    figures = {
        "pyside6": PySide6.__version__,
        "pyside6_drops_none_references": "yes (unsafe on Python 3.11; pin PySide6 < 6.12)" if leaks else "no",
        "appends_per_run": APPENDS,
        "repetitions": REPETITIONS,
        "transcript_chars_small": f"{small['chars']:.0f}",
        "transcript_chars_big": f"{big['chars']:.0f}",
        "append_us_at_2k": f"{small['append_us']:.1f}",
        "append_us_at_200k": f"{big['append_us']:.1f}",
        "append_cost_ratio": f"{big['append_us'] / small['append_us']:.2f}",
        "append_wall_us_at_2k": f"{small['append_wall_us']:.1f}",
        "append_wall_us_at_200k": f"{big['append_wall_us']:.1f}",
        "append_wall_cost_ratio": f"{big['append_wall_us'] / small['append_wall_us']:.2f}",
        "append_only_us_at_2k": f"{small['append_only_us']:.1f}",
        "append_only_us_at_200k": f"{big['append_only_us']:.1f}",
        "append_only_cost_ratio": f"{big['append_only_us'] / small['append_only_us']:.2f}",
        "render_ms_at_2k": f"{small['render_ms']:.2f}",
        "render_ms_at_200k": f"{big['render_ms']:.2f}",
        "finish_ms_at_2k": f"{small['finish_ms']:.2f}",
        "finish_ms_at_200k": f"{big['finish_ms']:.2f}",
    }
    print_figures(figures)
    if leaks:
        sys.stdout.flush()
        os._exit(0)  # freeing the held references at shutdown would end in the same fatal error


if __name__ == "__main__":
    main()
