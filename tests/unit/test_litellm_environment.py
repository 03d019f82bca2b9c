"""LiteLLM is imported the way the app imports it: it must not read a `.env` file into our process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def test_importing_litellm_reads_no_dotenv_file(tmp_path) -> None:
    # LiteLLM's DEV mode calls dotenv.load_dotenv() at import, which walks up from its own folder
    # (a venv inside a project finds the project's .env). Record whether it is called at all.
    script = textwrap.dedent("""
        import dotenv
        calls = []
        dotenv.load_dotenv = lambda *a, **k: calls.append(1) or False
        from desktop_app.services.litellm_engine import prepare_litellm_environment
        prepare_litellm_environment()
        import litellm  # noqa: F401
        print("load_dotenv calls:", len(calls))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=_inherited(),
        check=True,
    ).stdout
    assert "load_dotenv calls: 0" in out


def _inherited() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "LITELLM_MODE"}


@pytest.mark.asyncio
async def test_a_caller_that_gives_up_waiting_does_not_cancel_the_import() -> None:
    from desktop_app.services.litellm_engine import LiteLLMEngine

    engine = LiteLLMEngine()
    waiter = asyncio.ensure_future(engine.litellm())
    await asyncio.sleep(0)  # the waiter is waiting on the import now
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    try:
        module = await engine.litellm()  # the import went on and is there for the next caller
        assert module.__name__ == "litellm" and engine.loaded
        assert engine.loaded_module() is module  # from now on without a wait
    finally:
        engine.stop()


def test_chatting_through_the_engine_reaches_no_host_but_the_servers_asked(tmp_path) -> None:
    """No phone home: every name looked up and every connection made while LiteLLM is imported and
    streams from the loopback OpenAI and Anthropic servers is the loopback one (an audit hook sees
    them all, whichever library makes them)."""
    script = textwrap.dedent("""
        import asyncio, sys
        seen = set()

        def audit(event, args):
            if event == "socket.getaddrinfo":
                seen.add(str(args[0]))
            elif event == "socket.connect" and isinstance(args[1], tuple):
                seen.add(str(args[1][0]))

        sys.addaudithook(audit)
        from desktop_app.domain.accounts import Account
        from desktop_app.domain.chat import ChatMessage, ChatParams, Finished
        from desktop_app.services.chat.llm import LLMService
        from desktop_app.services.litellm_engine import LiteLLMEngine
        from tests.servers.anthropic_fault import AnthropicServer
        from tests.servers.openai_fault import FaultServer

        async def ask(llm, account, key, model, params=ChatParams()):
            events = [e async for e in llm.stream_chat(account=account, api_key=key, model=model,
                      messages=[ChatMessage("user", "Hello")], params=params)]
            assert isinstance(events[-1], Finished), events[-1]

        async def main():
            engine = LiteLLMEngine()
            llm = LLMService(engine=engine)
            with FaultServer() as openai, AnthropicServer() as anthropic:
                await ask(llm, Account(provider_id="openai_compatible", label="o", base_url=openai.base_url),
                          "sk-test", "ok")
                claude = Account(provider_id="anthropic", label="a", base_url=anthropic.base_url)
                await ask(llm, claude, "sk-ant-test-a", "claude-sonnet-4-5")
                # A beta header (the user's, on the account) makes LiteLLM filter it by its table.
                beta = Account(provider_id="anthropic", label="b", base_url=anthropic.base_url,
                               extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
                await ask(llm, beta, "sk-ant-test-a", "claude-sonnet-4-5")
            engine.stop()

        asyncio.run(main())
        print("hosts:", ",".join(sorted(seen)))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parents[2],
        env=_inherited(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    hosts = done.stdout.strip().splitlines()[-1].removeprefix("hosts: ").split(",")
    assert set(hosts) <= {"127.0.0.1", "localhost", "::1"}, hosts


def test_released_tokenizers_are_let_go_and_the_next_count_loads_them_again(tmp_path) -> None:
    """The context gauge lets go of LiteLLM's tokenizers (20 to 80 MB each) once there is no draft:
    after `release_tokenizers` no tiktoken encoding is left alive, and counts stay the same."""
    script = textwrap.dedent("""
        import gc
        from desktop_app.services.litellm_engine import (
            estimate_tokens, prepare_litellm_environment, release_tokenizers)

        prepare_litellm_environment()
        import litellm
        import tiktoken

        def encodings():
            return [o for o in gc.get_objects() if isinstance(o, tiktoken.Encoding)]

        messages = [{"role": "user", "content": "How many tokens is this, with a café and 東京?"}]
        models = ("openai/ok", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5")
        first = [estimate_tokens(litellm, m, messages=messages) for m in models]
        assert {e.name for e in encodings()} >= {"cl100k_base", "o200k_base"}, encodings()
        release_tokenizers()
        gc.collect()
        assert encodings() == [], encodings()
        again = [estimate_tokens(litellm, m, messages=messages) for m in models]
        assert again == first, (first, again)
        print("counts:", first)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parents[2],
        env=_inherited(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("counts:"), done.stdout
