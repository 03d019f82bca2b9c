"""Attaching a 12-megapixel photo: how long preparing it takes, and the window's heartbeat meanwhile.

Run from the repository root: python benchmarks/attachments.py [--runs N]
Prints `key: value` lines. Targets: prepare_ms <= 400 (read, decode, scale to Anthropic's 1,568 px,
encode, hash and store: `AttachmentStore.add_file`, median of --runs) and lag_max_ms <= 50 of a
10 ms Qt heartbeat on a qasync loop while it runs (the work is on a worker thread, never the loop).

The photo is 4032×3024 (a phone's 12 MP), a JPEG of smooth gradients with fine noise on top, about
the size a phone writes; made fresh in a temporary folder. `direct_prepare_ms` is `prepare()` called
on this thread with nothing else running: the cost of the work itself, for comparison.

`pane_prepare_ms` and `pane_lag_max_ms` (and p99) are the same photo dropped on the real chat
pane's composer, as a user drops a file (the whole app running, a Claude model picked): from the
drop until its chip, with its thumbnail, shows in the attachment tray.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchmarks._common import BenchApp, QtHeartbeat, lag_figures, print_figures, qasync_loop
from desktop_app.domain.attachments import image_limits
from desktop_app.services.chat.attachments import AttachmentStore, prepare

WIDTH, HEIGHT = 4032, 3024


def phone_photo() -> bytes:
    from PIL import Image

    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    noise = Image.effect_noise((WIDTH, HEIGHT), 24)
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    limits = image_limits("anthropic")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        data = phone_photo()
        photo.write_bytes(data)
        prepare(data, photo.name, limits)  # Pillow's first import and codec set-up, not measured
        direct = []
        for _ in range(args.runs):
            started = time.perf_counter()
            prepare(photo.read_bytes(), photo.name, limits)
            direct.append(time.perf_counter() - started)

        app = QApplication.instance() or QApplication(sys.argv[:1])
        loop = qasync_loop(app)
        asyncio.set_event_loop(loop)

        async def measure() -> dict[str, float]:
            heartbeat = QtHeartbeat()
            idle = await heartbeat.start()
            timings, lateness = [], []
            for run in range(args.runs):
                store = AttachmentStore(Path(tmp) / f"attachments-{run}")  # a new store: nothing cached
                started = time.perf_counter()
                attachment = await store.add_file(photo, limits)
                ended = time.perf_counter()
                await heartbeat.last_tick()
                timings.append(ended - started)
                lateness += heartbeat.lateness(started, ended)
            heartbeat.stop()
            return {
                "photo_mb": round(len(data) / 1e6, 2),
                "sent_size": f"{attachment.width}x{attachment.height}",
                "sent_kb": round(attachment.size / 1000),
                "prepare_ms": round(statistics.median(timings) * 1e3, 1),
                "prepare_max_ms": round(max(timings) * 1e3, 1),
                "direct_prepare_ms": round(statistics.median(direct) * 1e3, 1),
                **{k: round(v, 1) for k, v in lag_figures(lateness).items()},
                **{k: round(v, 1) for k, v in lag_figures(idle, "idle_").items()},
            }

        try:
            figures = loop.run_until_complete(measure())
        finally:
            loop.close()
        figures |= pane_figures(photo, args.runs, Path(tmp) / "home")
    print_figures(figures)


def pane_figures(photo: Path, runs: int, home: Path) -> dict[str, float]:
    """The photo dropped on the chat pane's composer `runs` times (the tray emptied between drops)."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from desktop_app.domain.accounts import Account
    from desktop_app.services.litellm_engine import prepare_litellm_environment

    prepare_litellm_environment()
    os.environ["MODELDESK_HOME"] = str(home)
    bench = BenchApp(timeout_s=300)

    async def measure() -> dict[str, float]:
        await bench.start()
        app = bench.app
        # Nothing listens there: the picker gets LiteLLM's bundled list of Claude models.
        claude = Account(provider_id="anthropic", label="Claude", base_url="http://127.0.0.1:9")
        await app.accounts.save_account(claude, "sk-ant-bench")
        await app.accounts.refresh_models(claude.id)
        pane = app.chat_pane
        if not pane.select_model(claude.id, "claude-sonnet-4-5"):
            raise RuntimeError("claude-sonnet-4-5 is not in the picker")
        tray = pane.attachment_tray
        shown = asyncio.Event()
        tray.changed.connect(lambda: shown.set() if tray.attachments else None)
        await asyncio.sleep(3.0)  # the start-up's own work (model lists, details) is done first
        heartbeat = QtHeartbeat()
        idle = await heartbeat.start()
        timings, lateness = [], []
        for _ in range(runs):
            tray.clear()
            shown.clear()
            dropped = QMimeData()
            dropped.setUrls([QUrl.fromLocalFile(str(photo))])
            at, buttons, keys = QPoint(5, 5), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
            # Dragged in, then dropped: Qt delivers a drop only where the drag was let in.
            QApplication.sendEvent(
                pane.composer.viewport(), QDragEnterEvent(at, Qt.DropAction.CopyAction, dropped, buttons, keys)
            )
            drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, dropped, buttons, keys)
            started = time.perf_counter()
            QApplication.sendEvent(pane.composer.viewport(), drop)
            await shown.wait()
            ended = time.perf_counter()
            await heartbeat.last_tick()
            timings.append(ended - started)
            lateness += heartbeat.lateness(started, ended)
        heartbeat.stop()
        return {
            "pane_sent_size": f"{tray.attachments[0].width}x{tray.attachments[0].height}",
            "pane_prepare_ms": round(statistics.median(timings) * 1e3, 1),
            "pane_prepare_max_ms": round(max(timings) * 1e3, 1),
            **{f"pane_{k}": round(v, 1) for k, v in lag_figures(lateness).items()},
            **{f"pane_{k}": round(v, 1) for k, v in lag_figures(idle, "idle_").items()},
        }

    try:
        return bench.run(measure())
    finally:
        bench.shut_down()


if __name__ == "__main__":
    main()
