"""Opening a large conversation history, with the integrity check that runs at every open.

Run from the repository root: python benchmarks/store_open.py [--messages N] [--runs N]
Prints `key: value` lines. The check runs on the store's worker thread, never on the GUI loop; it
must stay a small part of the start-up (open_s well under a second for a heavy user's history).

  db_mb           size of the file: N messages of ~1 KB in conversations of 200
  open_s          ConversationStore.open() on it (connect, quick check, migrate, ready)
  quick_check_s   PRAGMA quick_check alone, the part the check adds
  first_list_s    list_conversations() right after open

Medians of --runs runs (5), the file in the page cache (as on a second start).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_figures
from desktop_app.services.chat.conversations import ConversationStore


def build(path: Path, messages: int) -> None:
    """The file written directly (a store would take minutes to add this many one by one)."""

    async def schema() -> None:
        store = ConversationStore(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    body = "lorem ipsum dolor sit amet " * 38
    with sqlite3.connect(path) as conn:
        for start in range(0, messages, 200):
            cursor = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
                (f"Conversation {start // 200}", time.time(), time.time()),
            )
            conn.executemany(
                "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)",
                (
                    (cursor.lastrowid, ("user", "assistant")[i % 2], f"{i} {body}", time.time())
                    for i in range(min(200, messages - start))
                ),
            )
    conn.close()


async def measure(path: Path) -> tuple[float, float, float]:
    store = ConversationStore(path)
    started = time.perf_counter()
    await store.open()
    opened = time.perf_counter() - started
    started = time.perf_counter()
    await store.list_conversations()
    listed = time.perf_counter() - started
    await store.close()
    with sqlite3.connect(path) as conn:
        started = time.perf_counter()
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        checked = time.perf_counter() - started
    conn.close()
    return opened, checked, listed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conversations.sqlite3"
        build(path, args.messages)
        runs = [asyncio.run(measure(path)) for _ in range(args.runs)]
        print_figures(
            {
                "messages": args.messages,
                "db_mb": round(path.stat().st_size / 1e6, 1),
                "open_s": round(statistics.median(r[0] for r in runs), 3),
                "quick_check_s": round(statistics.median(r[1] for r in runs), 3),
                "first_list_s": round(statistics.median(r[2] for r in runs), 3),
            }
        )


if __name__ == "__main__":
    main()
