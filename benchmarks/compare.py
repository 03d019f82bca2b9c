"""Compare mode: four columns streaming at once through the whole app, against one chat alone.

Run from the repository root: python benchmarks/compare.py [--runs N]
Prints `key: value` lines. The promises:

  burst:  4 columns each streaming 5,000 one-token chunks as fast as the fault server writes them
          (its fast-5000 model). The 10 ms heartbeat QTimer on the GUI loop stays on time
          (lag_p99_ms <= 33, lag_max_ms <= 100); the four together move at least 0.9 times the
          chunks per second of one ordinary chat alone (throughput_ratio); the process grows by at
          most 60 MB more than that one chat does (rss_growth_mb).
  paced:  4 columns each at a realistic 100 tokens/s (paced-100: 200 word chunks on a fixed
          schedule). Each column keeps the rate the same stream has alone (rate_fidelity, the
          worst column's tokens/s over the lone chat's, >= 0.95) and its first token comes within
          20 ms of the lone chat's (ttft_delta_ms, the worst column).

"Alone" is an ordinary chat (`ChatPane.send`), the comparison `CompareView.send`: both as the
Send button does, through ChatService (SQLite), LLMService (the engine thread and the mailbox)
and into the transcripts. Rates are taken where the user sees them, from the text reaching each
transcript: chunks / (end - request start) for the burst, and for the paced stream the tokens
after the first append over the time from the first append to the last. RSS is sampled every
20 ms while a run streams; the growth is the peak minus the RSS just before. Runs take turns
(alone first, then compare first, ...), after one warm-up of each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time

from _common import (
    ROOT,
    BenchApp,
    QtHeartbeat,
    drops_none_references,
    lag_figures,
    print_figures,
    side_by_side,
    start_server,
    stop_server,
)

sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop_app.services.litellm_engine import prepare_litellm_environment

BURST_MODEL, BURST_CHUNKS = "fast-5000", 5_000
PACED_MODEL, PACED_CHUNKS = "paced-100", 200
COLUMNS = 4
TIMEOUT_S = 180.0
RSS_EVERY_S = 0.020


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Arrivals:
    """When text reached a transcript, and how many tokens (words) it brought."""

    def __init__(self, transcript) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []
        original = transcript.append_text

        def timed(text: str) -> None:
            self.times.append(time.perf_counter())
            self.tokens.append(len(text.split()))
            original(text)

        transcript.append_text = timed

    def clear(self) -> None:
        self.times.clear()
        self.tokens.clear()

    def rate(self) -> float:
        """Tokens per second after the first append (the stream's steady rate)."""
        if len(self.times) < 2:
            return 0.0
        return sum(self.tokens[1:]) / (self.times[-1] - self.times[0])


class CompareBench(BenchApp):
    def __init__(self, port: int) -> None:
        super().__init__(TIMEOUT_S)
        self.port = port
        self.heartbeat = QtHeartbeat()
        self.account_id = ""
        self.lone = Arrivals(self.app.chat_pane.transcript)

    async def setup(self) -> None:
        from desktop_app.domain.accounts import Account

        app = self.app
        await self.start()
        account = Account(provider_id="openai_compatible", label="bench", base_url=f"http://127.0.0.1:{self.port}/v1")
        await app.accounts.save_account(account, "sk-test")
        await app.accounts.refresh_models(account.id)
        self.account_id = account.id
        app.window.show_pane("Chat")

    async def _measured(self, work) -> dict[str, float]:
        """Run `work()` with the heartbeat and the RSS sampler going."""
        await asyncio.sleep(0.2)  # let the cleared transcripts paint
        gc.collect()
        idle = await self.heartbeat.start()
        peak = before = rss_mb()

        async def sample() -> None:
            nonlocal peak
            while True:
                await asyncio.sleep(RSS_EVERY_S)
                peak = max(peak, rss_mb())

        sampler = asyncio.ensure_future(sample())
        start = time.perf_counter()
        try:
            await work()
            end = time.perf_counter()
            await self.heartbeat.last_tick()
        finally:
            sampler.cancel()
            self.heartbeat.stop()
        return {
            "start": start,
            "end": end,
            "rss_growth_mb": peak - before,
            **lag_figures(self.heartbeat.lateness(start, end)),
            **lag_figures(idle, "idle_"),
        }

    async def alone(self, model: str, chunks: int) -> dict[str, float]:
        pane = self.app.chat_pane
        if not pane.select_model(self.account_id, model):
            raise RuntimeError(f"{model} is not in the model picker")
        await pane.new_conversation()
        self.lone.clear()
        outcomes: list[str] = []
        pane.reply_finished.connect(outcomes.append)
        try:
            figures = await self._measured(lambda: pane.send("go"))
        finally:
            pane.reply_finished.disconnect(outcomes.append)
        if outcomes != ["complete"]:
            raise RuntimeError(f"the lone reply ended {outcomes}")
        got = sum(self.lone.tokens)
        if got != chunks:
            raise RuntimeError(f"the lone transcript got {got} tokens, not {chunks}")
        return {
            **figures,
            "chunks_per_s": got / (figures["end"] - figures["start"]),
            "rate": self.lone.rate(),
            "ttft_ms": (self.lone.times[0] - figures["start"]) * 1e3,
        }

    async def together(self, model: str, chunks: int) -> dict[str, float]:
        pane = self.app.chat_pane
        await pane.new_comparison()
        view = pane.compare
        while len(view.columns) < COLUMNS:
            view.add_column()
        arrivals = []
        for column in view.columns:
            column.set_target(self.account_id, model)
            arrivals.append(Arrivals(column.transcript))
        outcomes: list[list[str]] = []
        view.turn_finished.connect(outcomes.append)
        try:
            figures = await self._measured(lambda: view.send("go"))
        finally:
            view.turn_finished.disconnect(outcomes.append)
        if outcomes != [["complete"] * COLUMNS]:
            raise RuntimeError(f"the columns ended {outcomes}")
        for a in arrivals:
            if sum(a.tokens) != chunks:
                raise RuntimeError(f"a column got {sum(a.tokens)} tokens, not {chunks}")
        total = sum(sum(a.tokens) for a in arrivals)
        return {
            **figures,
            "chunks_per_s": total / (figures["end"] - figures["start"]),
            "worst_rate": min(a.rate() for a in arrivals),
            "worst_ttft_ms": max((a.times[0] - figures["start"]) * 1e3 for a in arrivals),
            "best_ttft_ms": min((a.times[0] - figures["start"]) * 1e3 for a in arrivals),
        }


def median_of(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def each(results: list[dict[str, float]], key: str, digits: int = 0) -> str:
    return ", ".join(f"{r[key]:.{digits}f}" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs of each side and load (default 3)")
    args = parser.parse_args()

    prepare_litellm_environment()
    home = tempfile.TemporaryDirectory(prefix="modeldesk-compare-")
    os.environ["MODELDESK_HOME"] = home.name
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication(sys.argv[:1])
    if drops_none_references():
        keep_none_alive = (None,) * 20_000_000  # noqa: F841  (see benchmarks/stream.py)
        gc.collect(0)

    server, port = start_server("tests.servers.openai_fault", name="the fault server")
    bench = None
    try:
        bench = CompareBench(port)
        bench.run(bench.setup())
        lone_burst, burst = side_by_side(
            args.runs,
            lambda: bench.run(bench.alone(BURST_MODEL, BURST_CHUNKS)),
            lambda: bench.run(bench.together(BURST_MODEL, BURST_CHUNKS)),
        )
        lone_paced, paced = side_by_side(
            args.runs,
            lambda: bench.run(bench.alone(PACED_MODEL, PACED_CHUNKS)),
            lambda: bench.run(bench.together(PACED_MODEL, PACED_CHUNKS)),
        )
    finally:
        try:
            if bench is not None:
                bench.shut_down()
        finally:
            stop_server(server)
            home.cleanup()

    lone_rate = median_of(lone_burst, "chunks_per_s")
    four_rate = median_of(burst, "chunks_per_s")
    print_figures(
        {
            "lone_chunks_per_s_each": each(lone_burst, "chunks_per_s"),
            "compare_chunks_per_s_each": each(burst, "chunks_per_s"),
            "lone_chunks_per_s": f"{lone_rate:.0f}",
            "compare_chunks_per_s": f"{four_rate:.0f}",
            "throughput_ratio": f"{four_rate / lone_rate:.2f}",
            "lag_p99_ms_each": each(burst, "lag_p99_ms", 1),
            "lag_max_ms_each": each(burst, "lag_max_ms", 1),
            "lag_p99_ms": f"{median_of(burst, 'lag_p99_ms'):.1f}",
            "lag_max_ms": f"{median_of(burst, 'lag_max_ms'):.1f}",
            "lone_lag_p99_ms": f"{median_of(lone_burst, 'lag_p99_ms'):.1f}",
            "lone_lag_max_ms": f"{median_of(lone_burst, 'lag_max_ms'):.1f}",
            "idle_lag_p99_ms": f"{median_of(burst, 'idle_lag_p99_ms'):.1f}",
            "idle_lag_max_ms": f"{median_of(burst, 'idle_lag_max_ms'):.1f}",
            "lone_rss_growth_mb": f"{median_of(lone_burst, 'rss_growth_mb'):.1f}",
            "compare_rss_growth_mb": f"{median_of(burst, 'rss_growth_mb'):.1f}",
            "rss_growth_mb": f"{median_of(burst, 'rss_growth_mb') - median_of(lone_burst, 'rss_growth_mb'):.1f}",
            "lone_paced_tokens_per_s": f"{median_of(lone_paced, 'rate'):.1f}",
            "compare_paced_worst_tokens_per_s_each": each(paced, "worst_rate", 1),
            "rate_fidelity": f"{median_of(paced, 'worst_rate') / median_of(lone_paced, 'rate'):.3f}",
            "lone_ttft_ms_each": each(lone_paced, "ttft_ms", 1),
            "compare_worst_ttft_ms_each": each(paced, "worst_ttft_ms", 1),
            "lone_ttft_ms": f"{median_of(lone_paced, 'ttft_ms'):.1f}",
            "compare_worst_ttft_ms": f"{median_of(paced, 'worst_ttft_ms'):.1f}",
            "compare_first_column_ttft_ms": f"{median_of(paced, 'best_ttft_ms'):.1f}",
            "ttft_delta_ms": f"{median_of(paced, 'worst_ttft_ms') - median_of(lone_paced, 'ttft_ms'):.1f}",
            "paced_lag_p99_ms": f"{median_of(paced, 'lag_p99_ms'):.1f}",
            "paced_lag_max_ms": f"{median_of(paced, 'lag_max_ms'):.1f}",
            "columns": COLUMNS,
            "runs": args.runs,
        }
    )


if __name__ == "__main__":
    main()
