"""LiteLLM is imported the way the app imports it: it must not read a `.env` file into our process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap

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
    finally:
        engine.stop()
