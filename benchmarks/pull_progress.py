"""A fast Ollama pull through OllamaService into a shown OllamaPane: does the window keep up?

Run from the repository root: python benchmarks/pull_progress.py [--seconds 5] [--rate 2000]
Prints `key: value` lines. The loopback Ollama server (tests/servers/ollama_server.py) runs as a
subprocess, so its work does not share this process's GIL; it writes `--rate` progress lines a
second for one layer of a pull that lasts about `--seconds`. The real OllamaService reads them
with the official client on a qasync loop and publishes coalesced snapshots (at most ~20 a second)
to a shown OllamaPane, which repaints the job's row. A 10 ms PreciseTimer on the Qt loop records
how late each tick is (actual interval minus 10 ms) while the pull runs.

  events:         progress lines the service received (the status lines included)
  events_per_s:   events / (end of pull - start of pull)
  lag_p99_ms:     99th percentile heartbeat lateness during the pull (target <= 33)
  lag_max_ms:     the worst tick
  ui_updates:     snapshots that reached the pane's jobs model
  app_cpu_percent: CPU time of this process (all threads) over the pull's wall time
  idle_lag_p99_ms: the same heartbeat with nothing running, before the pull (this machine's noise)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from _common import (
    ROOT,
    QtHeartbeat,
    lag_figures,
    print_figures,
    qasync_loop,
    start_server,
    stop_server,
)

sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

MODEL = "bench:latest"
BYTES_PER_TICK = 1_000_000
TIMEOUT_S = 120.0


def start_ollama(rate: float, seconds: float) -> tuple[subprocess.Popen, int]:
    size = int(rate * seconds) * BYTES_PER_TICK
    return start_server(
        "tests.servers.ollama_server",
        "--tick-s",
        str(1 / rate),
        "--bytes-per-tick",
        str(BYTES_PER_TICK),
        "--model",
        f"{MODEL}={size}",
        name="the Ollama test server",
    )


async def measure(port: int, home: Path) -> dict[str, float]:
    from desktop_app.domain.ollama import OllamaHost, PullState
    from desktop_app.services.local.ollama import OllamaService
    from desktop_app.ui.ollama import OllamaPane

    service = OllamaService(
        OllamaHost(url=f"http://127.0.0.1:{port}"),
        state_file=home / "ollama-pulls.json",
        models_dir=home,
        disk_usage=lambda _path: SimpleNamespace(free=10**15),
    )
    pane = OllamaPane(ollama=service)
    pane.resize(1200, 750)
    pane.show()
    heartbeat = QtHeartbeat()
    try:
        await pane.refresh()
        await asyncio.sleep(0.3)  # let the first paint settle
        # The imports above left ~80,000 young objects; in the app those collections happen at
        # start-up, not during a pull, so they are done before measuring.
        gc.collect()
        idle = await heartbeat.start()
        start, cpu_start = time.perf_counter(), time.process_time()
        job = await pane.pull(MODEL)
        final = await asyncio.wait_for(job.wait(), TIMEOUT_S)
        end, cpu_end = time.perf_counter(), time.process_time()
        await heartbeat.last_tick()
        heartbeat.stop()
        if final.state is not PullState.DONE:
            raise RuntimeError(f"the pull ended {final.state.value}: {final.error}")
        return {
            "events": job.events,
            "events_per_s": job.events / (end - start),
            "pull_s": end - start,
            **lag_figures(heartbeat.lateness(start, end)),
            "ui_updates": pane.jobs_model.updates,
            "published": job.published,
            "cpu_percent": (cpu_end - cpu_start) / (end - start) * 100,
            **lag_figures(idle, "idle_"),
        }
    finally:
        heartbeat.stop()
        await pane.aclose()
        await service.aclose()
        pane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the pull lasts")
    parser.add_argument("--rate", type=float, default=2000.0, help="progress lines a second")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from desktop_app.ui.common.gc import MainThreadCollector

    app = QApplication.instance() or QApplication(sys.argv[:1])
    collector = MainThreadCollector()  # as desktop_app/__main__.py: collection on the GUI thread
    collector.start()
    home = tempfile.TemporaryDirectory(prefix="modeldesk-pull-")
    server, port = start_ollama(args.rate, args.seconds)
    loop = qasync_loop(app)
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(measure(port, Path(home.name)))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        collector.stop()
        stop_server(server)
        home.cleanup()
    print_figures(
        {
            "events": result["events"],
            "events_per_s": f"{result['events_per_s']:.0f}",
            "pull_s": f"{result['pull_s']:.2f}",
            "lag_p99_ms": f"{result['lag_p99_ms']:.1f}",
            "lag_max_ms": f"{result['lag_max_ms']:.1f}",
            "heartbeat_ticks": result["ticks"],
            "ui_updates": result["ui_updates"],
            "snapshots_published": result["published"],
            "app_cpu_percent": f"{result['cpu_percent']:.0f}",
            "idle_ticks": result["idle_ticks"],
            "idle_lag_p99_ms": f"{result['idle_lag_p99_ms']:.1f}",
            "idle_lag_max_ms": f"{result['idle_lag_max_ms']:.1f}",
            "target_rate": f"{args.rate:.0f}",
        }
    )


if __name__ == "__main__":
    main()
