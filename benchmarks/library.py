"""A large history through the whole app: the list's first paint, search, opening a long conversation,
memory, and the window's heartbeat meanwhile.

Run from the repository root: python benchmarks/library.py [--conversations N] [--messages M]
The library (N conversations, M messages in all, one of them 2,000 messages long, text drawn from a
word list) is generated once into the user's cache folder and reused: a database made by the real
ConversationStore (its schema, migrations and search triggers), filled in one transaction. Each run
copies it into a fresh ModelDesk home and starts the app there in a child process, and a second child
on an empty library, both offscreen. Prints `key: value` lines:
- `list_first_paint_ms`: the chat pane's `load_conversations()` until the list's next paint (target 150);
- `search_p95_ms`: 50 queries of real words typed into the search panel, each until its first page of
  results is in the model (target 80);
- `open_2000_msgs_ms`: opening the 2,000-message conversation until the transcript's next paint (300);
- `rss_growth_mb`: RSS after all of that, over the same steps on an empty library (80);
- `lag_max_ms` / `lag_p99_ms`: a 10 ms Qt heartbeat while the list scrolls to its end in 40 steps and
  the 50 searches run (50).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, QtHeartbeat, lag_figures, percentile, print_figures, qasync_loop

LONG = 2000  # messages in the conversation that is opened
WORDS = """
the of and to in is that it was for on are as with his they at be this from have or by one had not but
what all were when we there can an your which their said if do will each about how up out them then she
many some so these would other into has more her two like him see time could no make than first been its
who now people my made over did down only way find use may water long little very after words called just
where most know get through back much before go good new write our used me man too any day same right look
think also around another came come work three word must because does part even place well such here take
why things help put years different away again off went old number great tell men say small every found
still between name should home big give air line set own under read last never us left end along while
might next sound below saw something thought both few those always looks show large often together asked
house world going want school important until form food keep children feet land side without boy once
animals life enough took sometimes four head above kind began almost live page got earth need far hand
high year mother light parts country father let night following picture being study second eyes soon
times story boys since white days ever paper hard near sentence better best across during today others
however sure means knew its try told young miles sun ways thing whole hear example heard several change
answer room sea against top turned learn point city play toward five using himself usually money seen
car morning given body family later became sky already horse field certain stars red door north list
river bird across mountain garden engine model server token prompt reply context window memory weights
python kernel driver network cable socket thread process queue buffer cache index search export import
library history project budget invoice meeting schedule travel flight hotel recipe bread butter coffee
tea sugar salt pepper onion garlic tomato potato carrot apple orange banana lemon cherry grape melon
""".split()  # noqa: SIM905 - a word list reads better as text
QUERIES = 50


def cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("ModelDesk-benchmarks", appauthor=False)


def generate(path: Path, conversations: int, messages: int) -> None:
    """The library, written straight into a database the real ConversationStore created."""
    from desktop_app.services.chat.conversations import ConversationStore

    async def create() -> None:
        store = ConversationStore(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    rng = random.Random(15)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    conn.execute("BEGIN")
    now = time.time() - conversations * 60
    message_id = 0
    rest = messages - LONG
    per = [rest // (conversations - 1) + (1 if c < rest % (conversations - 1) else 0) for c in range(conversations - 1)]
    rows: list[tuple] = []
    chats: list[tuple] = []
    tags: list[tuple] = []

    def flush() -> None:
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, role, content, status, model, created_at, parent_id)"
            " VALUES (?, ?, ?, ?, 'complete', ?, ?, ?)",
            rows,
        )
        rows.clear()

    for c, count in enumerate([LONG, *per], 1):
        model = ("llama-3.2-3b", "qwen2.5-7b", "gpt-4o-mini", "claude-haiku")[c % 4]
        stamp = now + c * 60
        parent = None
        for m in range(count):
            message_id += 1
            text = " ".join(rng.choices(WORDS, k=rng.randint(8, 40) if m % 2 == 0 else rng.randint(20, 90)))
            rows.append((message_id, c, "user" if m % 2 == 0 else "assistant", text, model, stamp, parent))
            parent = message_id
        title = "Long conversation" if c == 1 else " ".join(rng.choices(WORDS, k=4)).capitalize()
        chats.append((c, title, model, stamp - 30, stamp, parent, int(c % 997 == 0)))
        if c % 7 == 0:
            tags.append((c, rng.choice(("work", "home", "travel", "code"))))
        if len(rows) > 50_000:
            conn.executemany(
                "INSERT INTO conversations (id, title, model, created_at, updated_at, leaf_id, pinned)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                chats,
            )
            chats.clear()
            flush()
    conn.executemany(
        "INSERT INTO conversations (id, title, model, created_at, updated_at, leaf_id, pinned)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        chats,
    )
    flush()
    conn.executemany("INSERT INTO tags (conversation_id, tag) VALUES (?, ?)", tags)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


# --- the child: one app on one library ------------------------------------------------------------


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def probe(timeout_s: float) -> dict[str, float]:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from desktop_app.app import ModelDeskApp
    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.paths import AppPaths
    from desktop_app.ui.common.gc import MainThreadCollector
    from tests.memory_keyring import MemoryKeyring

    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    collector = MainThreadCollector()
    collector.start()
    loop = qasync_loop(qt_app)
    asyncio.set_event_loop(loop)
    app = ModelDeskApp(
        paths=AppPaths.from_environment(),
        secrets=SecretStore(backend=MemoryKeyring()),
        collector=collector,
        offer_env_import=False,
    )
    pane = app.chat_pane

    class Painted(QObject):
        """Resolves `future` at the widget's next paint."""

        future: asyncio.Future | None = None

        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.Paint and self.future is not None and not self.future.done():
                self.future.set_result(time.perf_counter())
            return False

        def next(self) -> asyncio.Future:
            self.future = asyncio.get_running_loop().create_future()
            return self.future

    list_paint, transcript_paint = Painted(), Painted()
    pane.conversations_box.view.viewport().installEventFilter(list_paint)
    pane.transcript.viewport().installEventFilter(transcript_paint)

    async def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        painted = asyncio.Event()
        app.window.first_painted.connect(painted.set)
        app.window.show()
        await painted.wait()
        await app.start()
        app.window.show_pane("Chat")
        await asyncio.sleep(0.5)
        pane.conversations_box.view.setFocus()
        # The list: reloaded as at start-up, until it is painted.
        started = time.perf_counter()
        await pane.load_conversations()
        shown = list_paint.next()  # the paint that shows what was loaded
        figures["list_first_paint_ms"] = (await shown - started) * 1e3
        figures["conversations_listed"] = pane.conversations.rowCount()
        # Opening the longest conversation until the transcript is painted.
        conversation = await app.store.get_conversation(1)
        heartbeat = QtHeartbeat()
        idle = await heartbeat.start()
        if conversation is not None and conversation.title == "Long conversation":
            started = time.perf_counter()
            await pane.open_conversation(conversation)
            shown = transcript_paint.next()
            figures["open_2000_msgs_ms"] = (await shown - started) * 1e3
            await asyncio.sleep(1.0)  # whatever the transcript still does after its first paint
            figures["open_lag_max_ms"] = lag_figures(heartbeat.lateness(started, time.perf_counter()))["lag_max_ms"]
        # The list scrolls to its end in 40 steps, then 50 searches run, the heartbeat ticking.
        busy_from = time.perf_counter()
        view = pane.conversations_box.view
        bar = view.verticalScrollBar()
        for _ in range(40):
            bar.setValue(bar.value() + max(bar.maximum() // 40, bar.pageStep()))
            await asyncio.sleep(0.03)
        figures["conversations_after_scroll"] = pane.conversations.rowCount()
        scrolled = time.perf_counter()
        search = pane.conversations_box.search
        words = random.Random(50).sample(WORDS, QUERIES)
        times = []
        for word in words:
            search.field.setText(word)
            started = time.perf_counter()
            await search.search()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        search.clear()
        await search.search()
        busy_to = time.perf_counter()
        await heartbeat.last_tick()
        heartbeat.stop()
        figures["search_p50_ms"] = percentile(times, 50) * 1e3
        figures["search_p95_ms"] = percentile(times, 95) * 1e3
        figures.update(lag_figures(heartbeat.lateness(busy_from, busy_to)))
        figures["scroll_lag_max_ms"] = lag_figures(heartbeat.lateness(busy_from, scrolled))["lag_max_ms"]
        figures["search_lag_max_ms"] = lag_figures(heartbeat.lateness(scrolled, busy_to))["lag_max_ms"]
        figures.update(lag_figures(idle, "idle_"))
        gc.collect()
        await asyncio.sleep(0.5)
        figures["rss_mb"] = rss_mb()
        await app.aclose()
        app.window.close()
        collector.stop()
        return figures

    try:
        return loop.run_until_complete(asyncio.wait_for(measure(), timeout_s))
    finally:
        loop.close()


def run_child(home: Path, timeout_s: float) -> dict[str, float]:
    env = {**os.environ, "MODELDESK_HOME": str(home), "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, __file__, "--probe", "--timeout", str(timeout_s)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    figures = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            figures[key] = float(value)
    if out.returncode != 0 or not figures:
        raise RuntimeError(f"the probe failed:\n{out.stderr[-3000:]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print_figures({k: round(v, 1) for k, v in probe(args.timeout).items()})
        return
    library = cache_dir() / f"library-{args.conversations}-{args.messages}.sqlite3"
    figures: dict[str, float] = {}
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        partial = library.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        started = time.perf_counter()
        generate(partial, args.conversations, args.messages)
        partial.rename(library)
        figures["generate_s"] = round(time.perf_counter() - started, 1)
    figures["library_mb"] = round(library.stat().st_size / 1e6, 1)
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp, "empty"), Path(tmp, "full")
        (full / "data").mkdir(parents=True)
        shutil.copyfile(library, full / "data" / "conversations.sqlite3")
        bare = run_child(empty, args.timeout)
        loaded = run_child(full, args.timeout)
    figures.update({k: v for k, v in loaded.items() if k != "rss_mb"})
    figures["rss_empty_mb"] = bare["rss_mb"]
    figures["rss_full_mb"] = loaded["rss_mb"]
    figures["rss_growth_mb"] = round(loaded["rss_mb"] - bare["rss_mb"], 1)
    print_figures(figures)


if __name__ == "__main__":
    main()
