"""Exporting and importing a large history: how long each takes, and the window's heartbeat meanwhile.

Run from the repository root: python benchmarks/library_transfer.py [--conversations N] [--messages M]
Prints `key: value` lines: `export_s` (all conversations to ModelDesk JSON: read on the store's
worker, encoded and written on a thread), `import_s` (that file into a second, empty library: read,
checked against the schema on a thread, one transaction on the store's worker), the file's size, and
`lag_max_ms` / `lag_p99_ms` of a 10 ms Qt heartbeat on a qasync loop during each. The library is
generated fresh in a temporary folder: N conversations of M messages of 500 characters, every tenth
conversation with a 200 kB text file attached (20 distinct files).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import QtHeartbeat, lag_figures, print_figures, qasync_loop
from desktop_app.domain.attachments import DEFAULT_IMAGE_LIMITS
from desktop_app.domain.library import ExportFormat
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.library import ConversationLibrary


async def generate(store: ConversationStore, attachments: AttachmentStore, conversations: int, messages: int) -> None:
    files = [
        await attachments.add_bytes((f"{n:04d} " * 40_000).encode(), f"notes {n}.txt", DEFAULT_IMAGE_LIMITS)
        for n in range(20)
    ]
    text = "The quick brown fox jumps over the lazy dog, again and again. " * 8
    for c in range(conversations):
        conversation = await store.create_conversation(title=f"Conversation {c}", model="m")
        for m in range(messages):
            attached = (files[c % 20],) if m == 0 and c % 10 == 0 else ()
            role = "user" if m % 2 == 0 else "assistant"
            await store.add_message(conversation.id, role=role, content=text, attachments=attached)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = qasync_loop(app)
    asyncio.set_event_loop(loop)

    async def measure(tmp: Path) -> dict[str, float]:
        source = ConversationStore(tmp / "source.sqlite3")
        target = ConversationStore(tmp / "target.sqlite3")
        await source.open()
        await target.open()
        source_files = AttachmentStore(tmp / "source-attachments")
        await generate(source, source_files, args.conversations, args.messages)
        out = tmp / "library.json"
        heartbeat = QtHeartbeat()
        idle = await heartbeat.start()
        figures: dict[str, float] = {"messages": args.conversations * args.messages}
        for name, step in (
            (
                "export",
                lambda: ConversationLibrary(store=source, attachments=source_files).export(out, ExportFormat.JSON),
            ),
            (
                "import",
                lambda: ConversationLibrary(store=target, attachments=AttachmentStore(tmp / "b")).import_file(out),
            ),
        ):
            started = time.perf_counter()
            await step()
            ended = time.perf_counter()
            await heartbeat.last_tick()
            figures[f"{name}_s"] = round(ended - started, 2)
            figures.update(
                {k: round(v, 1) for k, v in lag_figures(heartbeat.lateness(started, ended), f"{name}_").items()}
            )
        heartbeat.stop()
        figures["file_mb"] = round(out.stat().st_size / 1e6, 1)
        figures.update({k: round(v, 1) for k, v in lag_figures(idle, "idle_").items()})
        await source.close()
        await target.close()
        return figures

    with tempfile.TemporaryDirectory() as tmp:
        try:
            figures = loop.run_until_complete(measure(Path(tmp)))
        finally:
            loop.close()
    print_figures(figures)


if __name__ == "__main__":
    main()
