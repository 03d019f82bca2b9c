"""A 20,000-chunk burst through plain LiteLLM and through the whole app, side by side.

Run from the repository root: python benchmarks/stream.py [--runs N]
Prints `key: value` lines. The app's promises: it keeps up with LiteLLM itself
(throughput_ratio = app_chunks_per_s / baseline_chunks_per_s, target >= 0.9) and the window stays
responsive while the burst arrives (a 10 ms heartbeat QTimer on the GUI loop is late by at most
lag_p99_ms <= 25 and lag_max_ms <= 80 in every pass).

The fault server (tests/servers/openai_fault.py) runs as a subprocess, so its CPU does not share
this process's GIL; its model fast-20000 writes 20,000 one-token chunks as fast as it can.

  baseline: `litellm.acompletion(..., stream=True)` and a plain `async for` on a plain asyncio
            loop, with a 10 ms heartbeat task on that same loop (baseline_lag_*: what a window
            would suffer if LiteLLM ran on the GUI loop, the reason for the engine thread).
  app:      the real ModelDeskApp (every service, the shown main window) on a qasync loop;
            `ChatPane.send("go")` as the Send button does, so the request goes through
            ChatService (SQLite), LLMService (the engine thread and the mailbox) and into the
            TranscriptView. A 10 ms PreciseTimer on the Qt loop records how late each tick is
            (actual interval minus 10 ms) while the reply streams.

Both rates are chunks / (end - request start). What that span includes on both sides: LiteLLM's
per-request set-up (argument handling, the HTTP client from its cache, opening or reusing the
connection), the server's time to the first byte, reading, parsing and wrapping every chunk, and
LiteLLM's end of stream: its iterator only stops after rebuilding the whole response from every
chunk (`stream_chunk_builder`, on a worker thread), which baseline_tail_ms shows (last content
chunk to the end of the loop). The app side also includes what a user waits for and the baseline
does not do: storing the user message and the empty reply in SQLite, the hop to the engine thread
and back, the final save, and finishing the transcript (rendering the whole answer as markdown),
up to `reply_finished`. Each side is warmed up once (LiteLLM's first request costs ~1 s of
set-up), then the runs alternate between the two (baseline first, then app first, ...) so both
see the same load; idle_lag_* is the heartbeat with nothing streaming, before each app run.

One process means shared state. The app path runs as desktop_app/__main__.py sets it up (garbage
collected on the GUI thread by MainThreadCollector); the baseline runs with Python's automatic
collection and its own `__import__` (PySide6's hook, installed here by the app path, slows LiteLLM
down). Both share the objects the engine freezes out of the collector's way when it has imported
LiteLLM, and the GIL switch interval it sets, which makes no difference to a single busy thread.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time

from _common import (
    HEARTBEAT_S,
    ROOT,
    BenchApp,
    QtHeartbeat,
    drops_none_references,
    lag_figures,
    overlapping_lateness,
    print_figures,
    side_by_side,
    start_server,
    stop_server,
)

sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop_app.services.litellm_engine import prepare_litellm_environment

MODEL = "fast-20000"
CHUNKS = 20_000
TIMEOUT_S = 120.0


# --- (a) the baseline: LiteLLM on a plain asyncio loop ------------------------------------------


async def baseline_once(litellm, api_base: str) -> dict[str, float]:
    intervals: list[tuple[float, float]] = []

    async def heartbeat() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            intervals.append((before, time.perf_counter()))

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(HEARTBEAT_S * 3)
    chunks = 0
    first = None
    start = time.perf_counter()
    stream = await litellm.acompletion(
        model=f"openai/{MODEL}",
        api_base=api_base,
        api_key="sk-test",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            last = time.perf_counter()
            if first is None:
                first = last
    end = time.perf_counter()
    await asyncio.sleep(HEARTBEAT_S * 5)  # the tick after the last block is needed too
    beat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beat
    if chunks != CHUNKS:
        raise RuntimeError(f"baseline received {chunks} content chunks, not {CHUNKS}")
    return {
        "chunks_per_s": chunks / (end - start),
        "ttfb_ms": (first - start) * 1e3,
        "tail_ms": (end - last) * 1e3,
        **lag_figures(overlapping_lateness(intervals, start, end)),
    }


# --- (b) the app: ModelDeskApp on a qasync loop -------------------------------------------------


class AppBench(BenchApp):
    def __init__(self, port: int) -> None:
        super().__init__(TIMEOUT_S)
        self.port = port
        self.heartbeat = QtHeartbeat()

    async def setup(self) -> None:
        from desktop_app.domain.accounts import Account

        app = self.app
        await self.start()
        account = Account(provider_id="openai_compatible", label="bench", base_url=f"http://127.0.0.1:{self.port}/v1")
        await app.accounts.save_account(account, "sk-test")
        await app.accounts.refresh_models(account.id)
        app.window.show_pane("Chat")
        if not app.chat_pane.select_model(account.id, MODEL):
            raise RuntimeError(f"{MODEL} is not in the model picker")

    async def once(self) -> dict[str, float]:
        pane = self.app.chat_pane
        await pane.new_conversation()
        await asyncio.sleep(0.2)  # let the cleared transcript paint
        finished: list[tuple[float, str]] = []

        def on_finished(outcome: str) -> None:
            finished.append((time.perf_counter(), outcome))

        pane.reply_finished.connect(on_finished)
        idle = await self.heartbeat.start()  # nothing streaming yet: this machine's noise
        self.first_text = None
        start = time.perf_counter()
        try:
            await pane.send("go")
            await self.heartbeat.last_tick()
        finally:
            self.heartbeat.stop()
            pane.reply_finished.disconnect(on_finished)
        if not finished or finished[0][1] != "complete":
            raise RuntimeError(f"the reply ended {finished[0][1] if finished else 'without reply_finished'}")
        end = finished[0][0]
        chunks = len(pane.transcript.plain_text_of_last_message().split())
        if chunks != CHUNKS:
            raise RuntimeError(f"the transcript shows {chunks} tokens, not {CHUNKS}")
        return {
            "chunks_per_s": chunks / (end - start),
            "ttfb_ms": (self.first_text - start) * 1e3,
            **lag_figures(self.heartbeat.lateness(start, end)),
            **lag_figures(idle, "idle_"),
        }


# --- the run -----------------------------------------------------------------------------------


def median_of(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def each(results: list[dict[str, float]], key: str, digits: int = 0) -> str:
    return ", ".join(f"{r[key]:.{digits}f}" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured requests on each side (default 3)")
    args = parser.parse_args()

    prepare_litellm_environment()  # the same environment the engine thread sets up
    home = tempfile.TemporaryDirectory(prefix="modeldesk-stream-")
    os.environ["MODELDESK_HOME"] = home.name
    import litellm  # before PySide6, which would otherwise slow this import down (see litellm_engine)

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False

    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication(sys.argv[:1])
    if drops_none_references():
        # As in benchmarks/transcript.py: without this the run can end in "Fatal Python error:
        # none_dealloc". A tuple of None is untracked by the first collection, so (unlike a list)
        # it adds nothing to the garbage collector's pauses, which this benchmark measures.
        keep_none_alive = (None,) * 20_000_000  # noqa: F841
        gc.collect(0)

    server, port = start_server("tests.servers.openai_fault", name="the fault server")
    base_loop = asyncio.new_event_loop()
    bench = None
    try:
        api_base = f"http://127.0.0.1:{port}/v1"

        def baseline() -> dict[str, float]:
            # Plain LiteLLM runs without PySide6's import hook, which this process has installed
            # and which costs LiteLLM's run-time imports (see litellm_engine.py) 5-20% here.
            # It also gets Python's automatic garbage collection, not the app's GUI-thread one.
            hook = builtins.__import__
            builtins.__import__ = getattr(builtins, "__orig_import__", hook)
            bench.collector.stop()
            asyncio.set_event_loop(base_loop)
            try:
                measured = asyncio.wait_for(baseline_once(litellm, api_base), TIMEOUT_S)
                return base_loop.run_until_complete(measured)
            finally:
                asyncio.set_event_loop(None)
                bench.collector.start()
                builtins.__import__ = hook

        bench = AppBench(port)
        bench.run(bench.setup())
        base_results, app_results = side_by_side(args.runs, baseline, lambda: bench.run(bench.once()))
    finally:
        try:
            if bench is not None:
                bench.shut_down()
        finally:
            base_loop.close()
            stop_server(server)
            home.cleanup()

    base_rate = median_of(base_results, "chunks_per_s")
    app_rate = median_of(app_results, "chunks_per_s")
    print_figures(
        {
            "baseline_chunks_per_s_each": each(base_results, "chunks_per_s"),
            "app_chunks_per_s_each": each(app_results, "chunks_per_s"),
            "baseline_chunks_per_s": f"{base_rate:.0f}",
            "app_chunks_per_s": f"{app_rate:.0f}",
            "throughput_ratio": f"{app_rate / base_rate:.2f}",
            "baseline_ttfb_ms": f"{median_of(base_results, 'ttfb_ms'):.0f}",
            "app_ttfb_ms": f"{median_of(app_results, 'ttfb_ms'):.0f}",
            "baseline_tail_ms": f"{median_of(base_results, 'tail_ms'):.0f}",
            "lag_p99_ms_each": each(app_results, "lag_p99_ms", 1),
            "lag_max_ms_each": each(app_results, "lag_max_ms", 1),
            "lag_p99_ms": f"{median_of(app_results, 'lag_p99_ms'):.1f}",
            "lag_max_ms": f"{median_of(app_results, 'lag_max_ms'):.1f}",
            "heartbeat_ticks": f"{median_of(app_results, 'ticks'):.0f}",
            "idle_lag_p99_ms": f"{median_of(app_results, 'idle_lag_p99_ms'):.1f}",
            "idle_lag_max_ms": f"{median_of(app_results, 'idle_lag_max_ms'):.1f}",
            "baseline_lag_p99_ms": f"{median_of(base_results, 'lag_p99_ms'):.1f}",
            "baseline_lag_max_ms": f"{median_of(base_results, 'lag_max_ms'):.1f}",
            "chunks": CHUNKS,
            "runs": args.runs,
        }
    )


if __name__ == "__main__":
    main()
