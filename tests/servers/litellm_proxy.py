"""A real LiteLLM Proxy (`litellm --config FILE`) in a subprocess, on a free loopback port.

It runs from its own venv, which `make servers` provisions (scripts/provision_test_servers.py);
when that is missing the tests that need it are skipped, or fail under MODELDESK_REQUIRE_REAL_SERVERS=1.
Ready when `GET /health/liveliness` answers 200 (`/health` would send a completion to every model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.servers.llama import _from_env_file, free_port


def proxy_binary() -> Path:
    """The provisioned `litellm` command, or skip/fail when it was not provisioned."""
    binary = os.environ.get("MODELDESK_TEST_LITELLM_PROXY") or _from_env_file("MODELDESK_TEST_LITELLM_PROXY")
    if binary and Path(binary).is_file():
        return Path(binary)
    reason = "LiteLLM Proxy is not provisioned (run `make servers`)"
    if os.environ.get("MODELDESK_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class LiteLLMProxy:
    """`litellm --config config` with exactly the environment variables in `env` (plus PATH).

    Only the process we started is ever signalled.
    """

    def __init__(self, config: Path, env: Mapping[str, str]) -> None:
        self.binary = proxy_binary()
        self.port = free_port()
        self._config = config
        # A scratch HOME and working dir: the proxy reads `.env` from its working dir and must not
        # see the user's files; offline, the price list must come from LiteLLM's own copy.
        self._scratch = tempfile.mkdtemp(prefix="litellm-proxy-home-")
        self._env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": self._scratch,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            **env,
        }
        # Open for the proxy's lifetime; stop() closes it.
        self._log = tempfile.NamedTemporaryFile(prefix="litellm-proxy-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180.0) -> LiteLLMProxy:
        args = [str(self.binary), "--config", str(self._config), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=self._env, cwd=self._scratch
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"LiteLLM Proxy exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health/liveliness", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a starting server; the test itself never sleeps
        self.stop()
        raise RuntimeError(f"LiteLLM Proxy not live after {timeout_s} s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
