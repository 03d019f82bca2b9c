"""Time to first token through the whole app against a plain httpx stream, same llama-server.

Run from the repository root, with the test servers provisioned (`make servers`):
    set -a; . .cache/test-servers.env; set +a; python benchmarks/ttft.py [--runs N]
Prints `key: value` lines. The promise: what ModelDesk adds before the first token is shown is
small (ttft_overhead_ms_p50 <= 15, ttft_overhead_ms_p95 <= 40), where the overhead is the app's
percentile minus the plain stream's percentile over the same number of alternating requests.

One real llama-server (tests/servers/llama.py: Gemma 3 270M, 2 threads) serves both sides the
same one-message conversation with max_tokens 16, so the prompt, its cache state and the
server's work before the first token are the same for both.

  plain: httpx.AsyncClient (one client, connection kept alive) POSTs /v1/chat/completions with
         stream=true on a plain asyncio loop; first token = the first SSE event whose delta has
         content, parsed.
  app:   the real ModelDeskApp (every service, the shown main window) on a qasync loop;
         `ChatPane.send` as the Send button does: settings and the user message stored in SQLite,
         the dispatcher and LLMService, LiteLLM on the engine thread, the mailbox back to the GUI
         thread; first token = the first text handed to the TranscriptView.
Each side is warmed up first (LiteLLM's first request costs ~1 s of set-up); the measured
requests then alternate (plain first, then app first, ...). Each request runs to its end before
the next starts, so the server is idle when a request begins.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

from _common import ROOT, BenchApp, percentile, print_figures, side_by_side

sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROMPT = "Say hello."
MAX_TOKENS = 16
TIMEOUT_S = 120.0


async def plain_once(client, base_url: str) -> float:
    """Seconds from the request to its first content token, over plain httpx.

    llama-server closes a kept-alive connection after a few seconds idle or a few requests; a
    request that meets such a connection is sent again on a new one, timed from the new start.
    """
    import httpx

    for attempt in (1, 2):
        try:
            return await _plain_request(client, base_url)
        except httpx.RemoteProtocolError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _plain_request(client, base_url: str) -> float:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": MAX_TOKENS,
    }
    first = None
    start = time.perf_counter()
    async with client.stream(
        "POST", f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer no-key"}
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is not None or not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter()
    if first is None:
        raise RuntimeError("the plain stream brought no content")
    return first - start


class AppSide(BenchApp):
    """The real app on a qasync loop, with the first text reaching the transcript timed."""

    def __init__(self, base_url: str) -> None:
        super().__init__(TIMEOUT_S)
        self.base_url = base_url

    async def setup(self) -> None:
        from desktop_app.domain.accounts import Account

        app = self.app
        await self.start()
        account = Account(provider_id="llamacpp", label="bench", base_url=f"{self.base_url}/v1")
        await app.accounts.save_account(account)
        models = await app.accounts.refresh_models(account.id)
        app.window.show_pane("Chat")
        if not models or not app.chat_pane.select_model(account.id, models[0]):
            raise RuntimeError(f"no model to pick at {self.base_url}")
        app.chat_pane.params.max_tokens.setValue(MAX_TOKENS)

    async def once(self) -> float:
        pane = self.app.chat_pane
        await pane.new_conversation()  # the same one-message conversation each time
        finished: list[str] = []
        pane.reply_finished.connect(finished.append)
        self.first_text = None
        try:
            start = time.perf_counter()
            await pane.send(PROMPT)
        finally:
            pane.reply_finished.disconnect(finished.append)
        if finished != ["complete"] or self.first_text is None:
            raise RuntimeError(f"the reply ended {finished} with first text at {self.first_text}")
        return self.first_text - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured requests on each side (default 30)")
    args = parser.parse_args()

    import httpx

    from tests.servers.llama import LlamaServer

    home = tempfile.TemporaryDirectory(prefix="modeldesk-ttft-")
    os.environ["MODELDESK_HOME"] = home.name
    server = LlamaServer().start()
    plain_loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT_S), trust_env=False)
    side = None
    try:

        def plain() -> float:
            asyncio.set_event_loop(plain_loop)
            try:
                return plain_loop.run_until_complete(plain_once(client, server.base_url))
            finally:
                asyncio.set_event_loop(None)

        side = AppSide(server.base_url)
        side.run(side.setup())
        plains, apps = side_by_side(args.runs, plain, lambda: side.run(side.once()))
    finally:
        try:
            if side is not None:
                side.shut_down()
        finally:
            plain_loop.run_until_complete(client.aclose())
            plain_loop.close()
            server.stop()
            home.cleanup()

    ms = [p * 1e3 for p in plains]
    app_ms = [a * 1e3 for a in apps]
    print_figures(
        {
            "plain_ttft_ms_each": ", ".join(f"{v:.0f}" for v in ms),
            "app_ttft_ms_each": ", ".join(f"{v:.0f}" for v in app_ms),
            "plain_ttft_ms_p50": f"{percentile(ms, 50):.1f}",
            "app_ttft_ms_p50": f"{percentile(app_ms, 50):.1f}",
            "plain_ttft_ms_p95": f"{percentile(ms, 95):.1f}",
            "app_ttft_ms_p95": f"{percentile(app_ms, 95):.1f}",
            "ttft_overhead_ms_p50": f"{percentile(app_ms, 50) - percentile(ms, 50):.1f}",
            "ttft_overhead_ms_p95": f"{percentile(app_ms, 95) - percentile(ms, 95):.1f}",
            "paired_overhead_ms_median": f"{statistics.median(a - p for a, p in zip(app_ms, ms)):.1f}",
            "runs": args.runs,
        }
    )


if __name__ == "__main__":
    main()
