"""How long until the first paint, against a bare PySide6 window, and what LiteLLM costs after it.

Run from the repository root: python benchmarks/startup.py [--runs N] [--warmup N] [--xcb]
Prints `key: value` lines. first_paint_ratio = median app / median bare window; the promise is
that ModelDesk paints within twice the time of the smallest possible PySide6 window (target
<= 2.0), that its memory once started stays within 230 MB (rss_mb: read 2 s after start-up ended;
LiteLLM is imported when first needed, so not yet), and within 280 MB after one streamed reply
(rss_after_reply_mb: the message typed into the chat pane's composer, whose context gauge counts it, and Send clicked, as a user does, answered by the loopback
server tests/servers/openai_fault.py in a process of its own; read once the gauge has counted the
conversation after the reply).
litellm_import_mb is what `import litellm` alone adds to a bare interpreter (same environment
as the engine's), so it can be told apart from what ModelDesk itself holds.

Each run launches two fresh processes, in alternating order (app first, then bare first, ...) so
that both see the same machine load and file-cache state:
  app:  python -m desktop_app --startup-probe, with MODELDESK_HOME a fresh empty directory
  bare: a QApplication with a QMainWindow holding a QLabel, which reports its first paint the
        same way (an event filter on the central widget's Paint event) and exits.
  floor: the same bare window, then `import litellm` in it: the least any PySide6 app that holds
        LiteLLM can weigh (bare_window_litellm_mb), to read rss_litellm_mb against.
Times are wall-clock in this process, from just before Popen to the moment the child's
`first_paint_s` line is read from its stdout (the child's own clock is not comparable). For the
app, litellm_loaded_ms is measured the same way up to its `litellm_loaded_s` line (the probe asks
for LiteLLM right after reading rss_mb), and rss_mb / rss_litellm_mb are the child's own figures. Both run on the offscreen platform
unless DISPLAY is set and --xcb is given. The untimed warm-up pairs (default 1) fill the file
cache and the children's bytecode cache (see --bytecode), so that no measured launch compiles.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _common import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120.0

LITELLM_ALONE = """\
import os

from desktop_app.services.litellm_engine import prepare_litellm_environment


def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


prepare_litellm_environment()
before = rss_mb()
import litellm  # noqa: E402

print(f"rss_mb: {rss_mb() - before:.1f}", flush=True)
"""

BARE_WINDOW = """\
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class FirstPaintWatcher(QObject):
    def __init__(self, callback):
        super().__init__()
        self._callback = callback
        self._seen = False

    def eventFilter(self, watched, event):
        if not self._seen and event.type() == QEvent.Type.Paint:
            self._seen = True
            self._callback()
        return False


def painted():
    print(f"first_paint_s: {time.perf_counter():.4f}", flush=True)
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    print(f"rss_mb: {pages * os.sysconf('SC_PAGE_SIZE') / 2**20:.1f}", flush=True)
    QTimer.singleShot(0, app.quit)


app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setWindowTitle("Bare")
window.resize(1280, 800)
label = QLabel("Hello")
window.setCentralWidget(label)
watcher = FirstPaintWatcher(painted)
label.installEventFilter(watcher)
window.show()
sys.exit(app.exec())
"""

# The floor: the bare window, then LiteLLM imported in it as the app's engine imports it.
BARE_WINDOW_LITELLM = BARE_WINDOW.replace(
    "def painted():\n",
    "def painted():\n"
    "    from desktop_app.services.litellm_engine import (\n"
    "        drop_pyside_import_hook, prepare_litellm_environment, release_duplicate_tables)\n"
    "    prepare_litellm_environment()\n"
    "    drop_pyside_import_hook()\n"
    "    import litellm  # noqa: F401\n"
    "    release_duplicate_tables()\n",
)
assert BARE_WINDOW_LITELLM != BARE_WINDOW


@dataclass
class Launch:
    first_paint_ms: float | None = None
    panes_ready_ms: float | None = None  # the app: every pane built and in the window
    litellm_loaded_ms: float | None = None
    rss_mb: float | None = None
    rss_litellm_mb: float | None = None  # the app: once LiteLLM is imported
    rss_after_reply_mb: float | None = None


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put((time.perf_counter(), line))
    lines.put((time.perf_counter(), None))


def launch(argv: list[str], env: dict[str, str], wanted: tuple[str, ...]) -> Launch:
    """Start `argv`, time the lines whose keys are in `wanted`; the child is always reaped."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    seen: dict[str, tuple[float, str]] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    try:
        reader.start()
        deadline = start + TIMEOUT_S
        while not all(key in seen for key in wanted):
            try:
                at, line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise RuntimeError(f"timed out after {TIMEOUT_S:.0f} s waiting for {wanted}") from None
            if line is None:
                break
            key, sep, value = line.partition(":")
            if sep and key.strip() in wanted and key.strip() not in seen:
                seen[key.strip()] = (at - start, value.strip())
        if not all(key in seen for key in wanted):
            proc.wait(timeout=10)
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(
                f"{argv[1:]} exited with {proc.returncode} before printing "
                f"{[k for k in wanted if k not in seen]}:\n{tail}"
            )
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print(f"warning: {argv[1:]} did not exit 30 s after its last figure; killed", file=sys.stderr)
    finally:
        if proc.poll() is None:
            proc.kill()  # this child only, by its PID
        proc.wait()
        if reader.ident is not None:
            reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()
    result = Launch()
    if "first_paint_s" in seen:
        result.first_paint_ms = seen["first_paint_s"][0] * 1e3
    if "panes_ready_s" in seen:
        result.panes_ready_ms = seen["panes_ready_s"][0] * 1e3
    if "litellm_loaded_s" in seen:
        result.litellm_loaded_ms = seen["litellm_loaded_s"][0] * 1e3
    if "rss_mb" in seen:
        result.rss_mb = float(seen["rss_mb"][1])
    if "rss_litellm_mb" in seen:
        result.rss_litellm_mb = float(seen["rss_litellm_mb"][1])
    if "rss_after_reply_mb" in seen:
        result.rss_after_reply_mb = float(seen["rss_after_reply_mb"][1])
    return result


def launch_app(env: dict[str, str], reply_from: str | None = None) -> Launch:
    home = tempfile.mkdtemp(prefix="modeldesk-startup-")
    argv = [sys.executable, "-m", "desktop_app", "--startup-probe"]
    wanted = ("first_paint_s", "panes_ready_s", "rss_mb", "litellm_loaded_s", "rss_litellm_mb")
    if reply_from:
        argv += ["--probe-reply-from", reply_from]
        wanted += ("rss_after_reply_mb",)
    try:
        return launch(argv, {**env, "MODELDESK_HOME": home}, wanted)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def launch_bare(env: dict[str, str], script: Path) -> Launch:
    return launch([sys.executable, str(script)], env, ("first_paint_s", "rss_mb"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured launches of each (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed launches of each first (default 1)")
    parser.add_argument("--reply-runs", type=int, default=3, help="launches that answer one message (default 3)")
    parser.add_argument("--xcb", action="store_true", help="use the X display in DISPLAY instead of offscreen")
    parser.add_argument(
        "--bytecode",
        choices=("cached", "as-is"),
        default="cached",
        help="cached (default): children compile into a private cache that the warm-up fills, "
        "as an installed app has .pyc files; as-is: this environment unchanged",
    )
    args = parser.parse_args()

    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "xcb" if args.xcb and env.get("DISPLAY") else "offscreen"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("MODELDESK_HOME", None)

    with tempfile.TemporaryDirectory(prefix="modeldesk-bare-") as tmp:
        if args.bytecode == "cached":
            # With PYTHONDONTWRITEBYTECODE set (as on CI machines) the app's own modules would be
            # compiled from source at every launch, which no installed copy does. A private cache
            # directory keeps the repository untouched.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        script = Path(tmp) / "bare_window.py"
        script.write_text(BARE_WINDOW)
        alone = Path(tmp) / "litellm_alone.py"
        alone.write_text(LITELLM_ALONE)
        floor = Path(tmp) / "bare_window_litellm.py"
        floor.write_text(BARE_WINDOW_LITELLM)
        for _ in range(args.warmup):
            launch_app(env)
            launch_bare(env, script)
        apps: list[Launch] = []
        bares: list[Launch] = []
        for run in range(args.runs):
            if run % 2 == 0:
                apps.append(launch_app(env))
                bares.append(launch_bare(env, script))
            else:
                bares.append(launch_bare(env, script))
                apps.append(launch_app(env))
        # Memory only (no timing): the same launches, each answering one chat message, and
        # LiteLLM's own import in a bare interpreter.
        server, port = start_server("tests.servers.openai_fault", name="the fault server")
        try:
            replies = [launch_app(env, f"http://127.0.0.1:{port}/v1") for _ in range(args.reply_runs)]
        finally:
            stop_server(server)
        litellm_alone = [launch([sys.executable, str(alone)], env, ("rss_mb",)).rss_mb for _ in range(args.reply_runs)]
        floors = [launch_bare(env, floor).rss_mb for _ in range(args.reply_runs)]

    app_paint = statistics.median(a.first_paint_ms for a in apps)
    bare_paint = statistics.median(b.first_paint_ms for b in bares)
    print(f"platform: {env['QT_QPA_PLATFORM']}")
    print(f"bytecode: {args.bytecode}")
    print(f"app_first_paint_ms_each: {', '.join(f'{a.first_paint_ms:.0f}' for a in apps)}")
    print(f"bare_first_paint_ms_each: {', '.join(f'{b.first_paint_ms:.0f}' for b in bares)}")
    print(f"app_first_paint_ms: {app_paint:.0f}")
    print(f"bare_first_paint_ms: {bare_paint:.0f}")
    print(f"first_paint_ratio: {app_paint / bare_paint:.2f}")
    # The app paints its window frame first and builds its panes right after; say when they are in.
    print(f"app_panes_ready_ms: {statistics.median(a.panes_ready_ms for a in apps):.0f}")
    print(f"litellm_loaded_ms: {statistics.median(a.litellm_loaded_ms for a in apps):.0f}")
    print(f"bare_rss_mb: {statistics.median(b.rss_mb for b in bares):.1f}")
    print(f"rss_mb_each: {', '.join(f'{a.rss_mb:.1f}' for a in apps)}")
    print(f"rss_mb: {statistics.median(a.rss_mb for a in apps):.1f}")
    print(f"rss_litellm_mb_each: {', '.join(f'{a.rss_litellm_mb:.1f}' for a in apps)}")
    print(f"rss_litellm_mb: {statistics.median(a.rss_litellm_mb for a in apps):.1f}")
    print(f"bare_window_litellm_mb: {statistics.median(floors):.1f}")
    print(f"rss_after_reply_mb_each: {', '.join(f'{r.rss_after_reply_mb:.1f}' for r in replies)}")
    print(f"rss_after_reply_mb: {statistics.median(r.rss_after_reply_mb for r in replies):.1f}")
    print(f"litellm_import_mb: {statistics.median(litellm_alone):.1f}")
    print(f"warmup_runs: {args.warmup}")
    print(f"runs: {args.runs}")


if __name__ == "__main__":
    main()
