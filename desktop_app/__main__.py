"""`python -m desktop_app` / `modeldesk`: parse flags, start Qt with the qasync loop, run the app."""

from __future__ import annotations

import argparse
import os
import sys
import time

# Before anything can import LiteLLM: never download a price list at import.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "True"  # nor any other table of its own (see litellm_engine.py)
from desktop_app.services.http_client import direct_to_loopback

# Before any HTTP client exists: with a proxy set, every client (LiteLLM's too) reaches local
# servers directly.
direct_to_loopback()

from desktop_app import __version__  # noqa: E402

PROBE_SETTLE_S = 2.0  # --startup-probe: idle time after start-up before its memory is read


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modeldesk", description="Manage local and cloud language models.")
    parser.add_argument("--version", action="version", version=f"ModelDesk {__version__}")
    parser.add_argument("--self-test", action="store_true", help="check that this installation works, then exit")
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    # With --startup-probe: then one streamed reply from this OpenAI-compatible server (/v1 URL).
    parser.add_argument("--probe-reply-from", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace, collector, quit_requested) -> int:
    import asyncio

    from desktop_app.ui.main_window import MainWindow

    # The window frame goes on screen first; the services and panes (pydantic, httpx, SQLite,
    # keyring, markdown...) are imported and built after its first paint.
    window = MainWindow()
    window.closing.connect(quit_requested.set)
    painted = asyncio.Event()
    window.first_painted.connect(painted.set)
    window.show()
    await painted.wait()
    if args.startup_probe:
        _probe_line("first_paint_s", time.perf_counter())

    from desktop_app.app import ModelDeskApp
    from desktop_app.services.logs import setup_logging
    from desktop_app.services.paths import AppPaths

    paths = AppPaths.from_environment().ensure()
    setup_logging(paths.log_dir)
    app = ModelDeskApp(paths=paths, window=window, collector=collector)
    if args.startup_probe:
        _probe_line("panes_ready_s", time.perf_counter())
    start = asyncio.ensure_future(app.start())
    if args.startup_probe:
        await start
        await asyncio.sleep(PROBE_SETTLE_S)  # what start-up left running in the background ends
        print(f"rss_mb: {_rss_mb():.1f}", flush=True)  # started; LiteLLM waits until first needed
        await app.engine.litellm()
        _probe_line("litellm_loaded_s", time.perf_counter())
        print(f"rss_litellm_mb: {_rss_mb():.1f}", flush=True)
        if args.probe_reply_from:
            await _probe_reply(app, args.probe_reply_from)
            print(f"rss_after_reply_mb: {_rss_mb():.1f}", flush=True)
        quit_requested.set()
    await quit_requested.wait()
    loop = asyncio.get_event_loop()
    while not loop.is_running():  # noqa: ASYNC110 (no event says "the loop runs again")
        # Resumed by qasync's last pass after Qt's loop ended (QApplication.quit()): wait for
        # `main` to run the loop again rather than quit outside it.
        await asyncio.sleep(0)
    if not start.done():
        start.cancel()
    await app.aclose()  # bounded: what it had to abandon is named in the log
    return 0


async def _probe_reply(app, base_url: str) -> None:
    """One reply, as a user gets it: the message typed into the composer (the context gauge counts
    it), Send clicked, the reply streamed from the first model `base_url` lists, and the gauge's
    count of the conversation once the reply has ended."""
    import asyncio

    from desktop_app.domain.accounts import Account

    account = Account(provider_id="openai_compatible", label="probe", base_url=base_url)
    await app.accounts.save_account(account, "sk-test")  # the key tests/servers take
    models = await app.accounts.refresh_models(account.id)
    app.window.show_pane("Chat")
    pane = app.chat_pane
    if not models or not pane.select_model(account.id, models[0]):
        raise RuntimeError(f"no model to pick at {base_url}")
    gauge = pane.context_gauge
    pane.composer.setPlainText("Say hello.")
    await _until(lambda: gauge.tokens is not None and not gauge.counting)
    finished = asyncio.Event()
    pane.reply_finished.connect(lambda _outcome: finished.set())
    pane.send_button.click()
    await finished.wait()
    await _until(lambda: not gauge.counting and not gauge.scheduled)


async def _until(condition) -> None:
    import asyncio

    while not condition():  # noqa: ASYNC110 (the probe only: no signal says "counted")
        await asyncio.sleep(0.05)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _probe_line(key: str, now: float) -> None:
    print(f"{key}: {now:.4f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        from desktop_app.selftest import run_self_test

        return run_self_test()
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    # Closing the window must not stop the loop under the quit's own work (saving the reply being
    # written, recording pulls as paused): `_run` ends when that work is done, and only then the loop.
    qt_app.setQuitOnLastWindowClosed(False)
    from desktop_app.services.litellm_engine import drop_pyside_import_hook

    # Before the app's own imports: PySide6's import hook (for `from __feature__`, unused here)
    # reads and keeps the source of every module imported after it.
    drop_pyside_import_hook()
    qt_app.setApplicationName("ModelDesk")
    qt_app.setApplicationVersion(__version__)
    qt_app.setDesktopFileName("io.github.modeldesk.ModelDesk")
    from desktop_app.ui.common.gc import MainThreadCollector

    collector = MainThreadCollector()
    collector.start()
    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)
    # qasync's run_forever does not install asyncio's async-generator hooks; without them an
    # abandoned async generator (e.g. httpx's line reader after an error line) is finalised
    # outside the loop and prints "no running event loop".
    sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook, finalizer=loop._asyncgen_finalizer_hook)
    try:
        with loop:
            quit_requested = asyncio.Event()
            run = loop.create_task(_run(args, collector, quit_requested))
            for _attempt in range(3):
                try:
                    return loop.run_until_complete(run)
                except RuntimeError:
                    if run.done():
                        raise
                    # Qt's own loop ended under us (QApplication.quit(), the session ending): ask
                    # `_run` to quit, and run the loop again until its work is done.
                    quit_requested.set()
            return 1
    finally:
        collector.stop()


if __name__ == "__main__":
    raise SystemExit(main())
