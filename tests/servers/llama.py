"""A real llama-server with the real Gemma 3 270M GGUF, on a free loopback port.

`make test` provisions both (scripts/provision_test_servers.py) and exports their paths. Outside
`make test` the same cache is looked up; when nothing is there the tests that need it are skipped,
unless MODELDESK_REQUIRE_REAL_SERVERS=1 (set by `make test` and CI), where that is a failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.servers.process import ServerProcess, from_env_file


def real_artifacts() -> tuple[Path, Path]:
    """(llama-server binary, GGUF model), or skip/fail when they were not provisioned."""
    binary = os.environ.get("MODELDESK_TEST_LLAMA_SERVER") or from_env_file("MODELDESK_TEST_LLAMA_SERVER")
    model = os.environ.get("MODELDESK_TEST_GGUF") or from_env_file("MODELDESK_TEST_GGUF")
    if binary and model and Path(binary).is_file() and Path(model).is_file():
        return Path(binary), Path(model)
    reason = "llama-server and the Gemma GGUF are not provisioned (run `make servers`)"
    if os.environ.get("MODELDESK_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class LlamaServer(ServerProcess):
    """Start with `start()`, stop with `stop()`; only the process we started is ever signalled."""

    name = "llama-server"

    def __init__(
        self,
        *,
        extra_args: tuple[str, ...] = (),
        ctx: int = 4096,
        alias: str = "gemma",
        router_names: tuple[str, ...] = (),
        jinja: bool = False,
    ) -> None:
        """`router_names`: router mode instead, over a folder serving the GGUF under each name.
        `jinja`: the GGUF's own chat template, run by llama-server's Jinja engine (tool calling needs it)."""
        self.binary, self.model = real_artifacts()
        super().__init__(log_prefix="llama-server-")
        self.alias = alias
        if router_names:
            folder = Path(tempfile.mkdtemp(prefix="llama-router-"))
            for name in router_names:
                (folder / f"{name}.gguf").symlink_to(self.model)
            target = ["--models-dir", str(folder)]
        else:
            target = ["-m", str(self.model), "--alias", alias]
        self._args = [
            str(self.binary),
            *target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(ctx),
            "-t",
            "2",
            *(("--jinja",) if jinja else ("--no-jinja", "--chat-template", "gemma")),
            *extra_args,
        ]

    def start(self, timeout_s: float = 60.0) -> LlamaServer:
        # A scratch HOME/LLAMA_CACHE: the server must not read or write the user's caches.
        scratch = tempfile.mkdtemp(prefix="llama-home-")
        self._launch(self._args, dict(os.environ, HOME=scratch, LLAMA_CACHE=scratch), timeout_s)
        return self

    def slots(self) -> list[dict]:
        return httpx.get(f"{self.base_url}/slots", timeout=5.0).json()

    def busy(self) -> bool:
        return any(slot.get("is_processing") for slot in self.slots())


if __name__ == "__main__":  # manual use: python -m tests.servers.llama
    with LlamaServer() as server:
        print(server.base_url, flush=True)
        sys.stdin.read()
