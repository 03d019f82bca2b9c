"""A 1 GB GGUF download from the loopback Hugging Face Hub twin: as fast as plain httpx, with the
Qt loop responsive, and a resume that fetches (almost) nothing twice.

Run from the repository root: python benchmarks/download.py [--size-mb 1024] [--runs 2]
Prints `key: value` lines. A sparse file of `--size-mb` is made in a temp dir and served by the
Hub twin (tests/servers/hf_hub.py) as a subprocess, so its sends do not share this GIL. On a qasync
loop with the 10 ms Qt heartbeat running, HubDownloads fetches it into a temp HF cache (resolve,
redirect, stream, write and sha256 on its own thread, the final rename); a plain
`httpx.AsyncClient.stream` written to disk on the same loop is the baseline. They take turns
(`side_by_side`). Then a second twin cuts the connection at 50 % once, and the download retries.

  throughput_ratio: baseline seconds / app seconds, medians (target >= 0.9)
  app_mb_per_s, baseline_mb_per_s: the medians as rates
  lag_p99_ms:       99th percentile heartbeat lateness during the app's downloads (target <= 33)
  resume_waste_mb:  bytes received twice after the cut at 50 % (target <= 16)
  idle_lag_p99_ms:  the heartbeat with nothing running (this machine's noise)

With --window, the same is measured through the whole app instead (BenchApp: every service and
the main window): the Discover pane shows the repo, its Download button is clicked, and its
download list follows the progress until the file is in place; the baseline runs on the same loop.
Those figures are printed with a `window_` prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, QtHeartbeat, lag_figures, print_figures, qasync_loop, start_server, stop_server

sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = "bench/model-GGUF"
NAME = "model-Q4_K_M.gguf"
TIMEOUT_S = 600.0


def make_file(folder: Path, size: int) -> tuple[Path, str]:
    """A sparse GGUF-named file (its bytes do not matter here) and its sha256."""
    path = folder / NAME
    with open(path, "wb") as file:
        file.write(b"GGUF")
        file.truncate(size)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(16 * 1024 * 1024):
            digest.update(chunk)
    return path, digest.hexdigest()


def start_twin(path: Path, sha: str, *cut: str):
    return start_server("tests.servers.hf_hub", "--file", f"{REPO}:{NAME}={path}#{sha}", *cut, name="the Hub twin")


async def plain_httpx(client, url: str, target: Path) -> float:
    start = time.perf_counter()
    async with client.stream("GET", url, follow_redirects=True) as response:
        response.raise_for_status()
        with open(target, "wb") as file:  # noqa: ASYNC230 - the plain way is the baseline
            async for chunk in response.aiter_raw():
                file.write(chunk)
    elapsed = time.perf_counter() - start
    await asyncio.to_thread(target.unlink)
    return elapsed


async def app_download(client, endpoint: str, cache: Path, *, retry: bool = False) -> tuple[float, float, int, int]:
    """Start and end of the download itself, bytes received, file size (the shared client is the app's)."""
    from desktop_app.domain.ollama import PullState
    from desktop_app.services.local.hf_downloads import DownloadRequest, HubDownloads
    from desktop_app.services.local.hf_hub import HubClient

    hub = HubClient(client, endpoint=endpoint)
    repo = await hub.repo(REPO)
    quant = (await hub.quant_files(REPO, repo.sha))[0]
    downloads = HubDownloads(
        hub, client, ledger_file=None, cache_dir=cache, reserve_bytes=0, retry_delays=(0.0,) if retry else ()
    )
    start = time.perf_counter()
    final = await downloads.start(DownloadRequest(REPO, quant, repo.sha)).wait()
    end = time.perf_counter()
    await downloads.aclose()
    if final.state is not PullState.DONE:
        raise RuntimeError(f"the download ended {final.state.value}: {final.error}")
    await asyncio.to_thread(shutil.rmtree, cache)
    return start, end, downloads.fetched_bytes, quant.size


async def measure(folder: Path, size: int, runs: int) -> dict[str, float]:
    path, sha = make_file(folder, size)
    twin, port = start_twin(path, sha)
    endpoint = f"http://127.0.0.1:{port}"
    import httpx

    from desktop_app.services.http_client import http_client

    client = http_client(timeout=60)  # one for the app's life, as in the app
    plain_client = httpx.AsyncClient(timeout=60)
    heartbeat = QtHeartbeat()
    try:
        gc.collect()
        idle = await heartbeat.start()
        app_times: list[float] = []
        plain_times: list[float] = []
        windows: list[tuple[float, float]] = []

        async def app() -> None:
            start, end, _fetched, _size = await app_download(client, endpoint, folder / "hf")
            app_times.append(end - start)
            windows.append((start, end))

        async def plain() -> None:
            plain_times.append(
                await plain_httpx(plain_client, f"{endpoint}/{REPO}/resolve/main/{NAME}", folder / "plain.gguf")
            )

        await app()  # warm-ups, not kept
        await plain()
        app_times.clear(), plain_times.clear(), windows.clear()
        for run in range(runs):
            for step in (app, plain) if run % 2 == 0 else (plain, app):
                await step()
        await heartbeat.last_tick()
        lateness = [late for start, end in windows for late in heartbeat.lateness(start, end)]
    finally:
        heartbeat.stop()
        stop_server(twin)
    cut_twin, cut_port = start_twin(path, sha, "--cut-after", str(size // 2))
    try:
        _start, _end, fetched, total = await app_download(
            client, f"http://127.0.0.1:{cut_port}", folder / "hf", retry=True
        )
    finally:
        stop_server(cut_twin)
        await client.aclose()
        await plain_client.aclose()
    app_s, plain_s = statistics.median(app_times), statistics.median(plain_times)
    return {
        "throughput_ratio": plain_s / app_s,
        "app_mb_per_s": size / app_s / 1e6,
        "baseline_mb_per_s": size / plain_s / 1e6,
        **lag_figures(lateness),
        "resume_waste_mb": (fetched - total) / 1e6,
        **lag_figures(idle, "idle_"),
    }


async def window_download(bench, cache: Path) -> tuple[float, float]:
    """Download through the Discover pane, as a user does: Download clicked; done once the file is
    in place (the pane's list follows every progress report meanwhile)."""
    from desktop_app.domain.ollama import PullState

    app = bench.app
    app.window.show_pane("Discover")
    pane = app.discover_pane
    await pane.show_repo(REPO)
    start = time.perf_counter()
    pane.download_button.click()
    ended = (PullState.DONE, PullState.FAILED, PullState.CANCELLED)
    [job] = [job for job in app.hub_downloads.jobs() if job.progress().state not in ended]
    final = await job.wait()
    end = time.perf_counter()
    if final.state is not PullState.DONE:
        raise RuntimeError(f"the download through the window ended {final.state.value}: {final.error}")
    await asyncio.to_thread(shutil.rmtree, cache)
    return start, end


def measure_window(folder: Path, size: int, runs: int) -> dict[str, float]:
    """The window side: the app and the baseline on the app's own loop, taking turns."""
    import httpx

    path, sha = make_file(folder, size)
    twin, port = start_twin(path, sha)
    endpoint = f"http://127.0.0.1:{port}"
    cache = folder / "hf"
    os.environ.update(
        HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(cache), MODELDESK_HOME=str(folder / "home"), HF_HUB_OFFLINE="0"
    )
    from _common import BenchApp

    bench = BenchApp(TIMEOUT_S)
    try:
        bench.run(bench.start())
        plain_client = httpx.AsyncClient(timeout=60)
        heartbeat = QtHeartbeat()

        async def measured() -> dict[str, float]:
            gc.collect()
            idle = await heartbeat.start()
            app_times: list[float] = []
            plain_times: list[float] = []
            windows: list[tuple[float, float]] = []
            url = f"{endpoint}/{REPO}/resolve/main/{NAME}"
            await window_download(bench, cache)  # warm-ups, not kept
            await plain_httpx(plain_client, url, folder / "plain.gguf")
            for run in range(runs):
                for side in ("app", "plain") if run % 2 == 0 else ("plain", "app"):
                    if side == "app":
                        start, end = await window_download(bench, cache)
                        app_times.append(end - start)
                        windows.append((start, end))
                    else:
                        plain_times.append(await plain_httpx(plain_client, url, folder / "plain.gguf"))
            await heartbeat.last_tick()
            heartbeat.stop()
            await plain_client.aclose()
            lateness = [late for start, end in windows for late in heartbeat.lateness(start, end)]
            app_s, plain_s = statistics.median(app_times), statistics.median(plain_times)
            return {
                "window_throughput_ratio": plain_s / app_s,
                "window_app_mb_per_s": size / app_s / 1e6,
                "window_baseline_mb_per_s": size / plain_s / 1e6,
                **lag_figures(lateness, "window_"),
                **lag_figures(idle, "window_idle_"),
            }

        return bench.run(measured())
    finally:
        bench.shut_down()
        stop_server(twin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=2, help="measured downloads of each kind")
    parser.add_argument("--window", action="store_true", help="through the whole app's Discover pane")
    args = parser.parse_args()
    if args.window:
        with tempfile.TemporaryDirectory(prefix="modeldesk-download-") as tmp:
            figures = measure_window(Path(tmp), args.size_mb * 1024 * 1024, args.runs)
        print_figures(
            {
                "size_mb": args.size_mb,
                "runs": args.runs,
                **{
                    k: (f"{v:.2f}" if "ratio" in k else f"{v:.1f}" if isinstance(v, float) else v)
                    for k, v in figures.items()
                },
            }
        )
        return

    from PySide6.QtWidgets import QApplication

    from desktop_app.ui.common.gc import MainThreadCollector

    app = QApplication.instance() or QApplication(sys.argv[:1])
    collector = MainThreadCollector()
    collector.start()
    folder = tempfile.TemporaryDirectory(prefix="modeldesk-download-")
    loop = qasync_loop(app)
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(
            asyncio.wait_for(measure(Path(folder.name), args.size_mb * 1024 * 1024, args.runs), TIMEOUT_S)
        )
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        collector.stop()
        folder.cleanup()
    print_figures(
        {
            "size_mb": args.size_mb,
            "runs": args.runs,
            "throughput_ratio": f"{result['throughput_ratio']:.2f}",
            "app_mb_per_s": f"{result['app_mb_per_s']:.0f}",
            "baseline_mb_per_s": f"{result['baseline_mb_per_s']:.0f}",
            "lag_p99_ms": f"{result['lag_p99_ms']:.1f}",
            "lag_max_ms": f"{result['lag_max_ms']:.1f}",
            "heartbeat_ticks": result["ticks"],
            "resume_waste_mb": f"{result['resume_waste_mb']:.1f}",
            "idle_lag_p99_ms": f"{result['idle_lag_p99_ms']:.1f}",
        }
    )


if __name__ == "__main__":
    main()
