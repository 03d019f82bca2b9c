"""What the real servers the tests run as subprocesses share: a free loopback port, the provisioned
paths, the wait until the server answers, its log, and stopping it (only the process started here)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

REPO = Path(__file__).resolve().parents[2]


def from_env_file(key: str) -> str | None:
    """`key` from .cache/test-servers.env (written by `make servers`), or None."""
    env_file = REPO / ".cache" / "test-servers.env"
    if not env_file.is_file():
        return None
    for line in env_file.read_text().splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server binary on a free loopback port, its output in a log file; ready when `ready_path`
    answers 200. Subclasses name it and call `_launch`."""

    name = "server"
    ready_path = "/health"
    not_ready = "not healthy"  # how the time-out message says the server never answered
    poll_s = 0.05
    stop_wait_s = 10.0
    log_lines = 20

    def __init__(self, *, log_prefix: str) -> None:
        self.port = free_port()
        # Open for the server's lifetime; stop() closes it.
        self._log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        raise NotImplementedError

    def _launch(self, args: list[str], env: Mapping[str, str], timeout_s: float, cwd: str | None = None) -> None:
        """Start `args` and wait until it answers; RuntimeError (with its log) when it exits or times out."""
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}{self.ready_path}", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(self.poll_s)  # polling a starting server; the test itself never sleeps
        self.stop()
        raise RuntimeError(f"{self.name} {self.not_ready} after {timeout_s} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-self.log_lines :])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_wait_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
