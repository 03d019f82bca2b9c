"""A real llama-server with the real Gemma 3 270M GGUF, on a free loopback port.

`make test` provisions both (scripts/provision_test_servers.py) and exports their paths. Outside
`make test` the same cache is looked up; when nothing is there the tests that need it are skipped,
unless MODELDESK_REQUIRE_REAL_SERVERS=1 (set by `make test` and CI), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _from_env_file(key: str) -> str | None:
    env_file = REPO / ".cache" / "test-servers.env"
    if not env_file.is_file():
        return None
    for line in env_file.read_text().splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value
    return None


def real_artifacts() -> tuple[Path, Path]:
    """(llama-server binary, GGUF model), or skip/fail when they were not provisioned."""
    binary = os.environ.get("MODELDESK_TEST_LLAMA_SERVER") or _from_env_file("MODELDESK_TEST_LLAMA_SERVER")
    model = os.environ.get("MODELDESK_TEST_GGUF") or _from_env_file("MODELDESK_TEST_GGUF")
    if binary and model and Path(binary).is_file() and Path(model).is_file():
        return Path(binary), Path(model)
    reason = "llama-server and the Gemma GGUF are not provisioned (run `make servers`)"
    if os.environ.get("MODELDESK_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """Start with `start()`, stop with `stop()`; only the process we started is ever signalled."""

    def __init__(self, *, extra_args: tuple[str, ...] = (), ctx: int = 4096, alias: str = "gemma") -> None:
        self.binary, self.model = real_artifacts()
        self.port = free_port()
        self.alias = alias
        self._args = [
            str(self.binary),
            "-m",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(ctx),
            "-t",
            "2",
            "--alias",
            alias,
            "--no-jinja",
            "--chat-template",
            "gemma",
            *extra_args,
        ]
        # Open for the server's lifetime; stop() closes it.
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> LlamaServer:
        # A scratch HOME/LLAMA_CACHE: the server must not read or write the user's caches.
        scratch = tempfile.mkdtemp(prefix="llama-home-")
        env = dict(os.environ, HOME=scratch, LLAMA_CACHE=scratch)
        self.process = subprocess.Popen(self._args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a starting server; the test itself never sleeps
        self.stop()
        raise RuntimeError(f"llama-server not healthy after {timeout_s} s: {self.log_tail()}")

    def slots(self) -> list[dict]:
        return httpx.get(f"{self.base_url}/slots", timeout=5.0).json()

    def busy(self) -> bool:
        return any(slot.get("is_processing") for slot in self.slots())

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # manual use: python -m tests.servers.llama
    with LlamaServer() as server:
        print(server.base_url, flush=True)
        sys.stdin.read()
