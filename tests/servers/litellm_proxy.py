"""A real LiteLLM Proxy (`litellm --config FILE`) in a subprocess, on a free loopback port.

It runs from its own venv, which `make servers` provisions (scripts/provision_test_servers.py);
when that is missing the tests that need it are skipped, or fail under MODELDESK_REQUIRE_REAL_SERVERS=1.
Ready when `GET /health/liveliness` answers 200 (`/health` would send a completion to every model).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, from_env_file


def proxy_binary() -> Path:
    """The provisioned `litellm` command, or skip/fail when it was not provisioned."""
    binary = os.environ.get("MODELDESK_TEST_LITELLM_PROXY") or from_env_file("MODELDESK_TEST_LITELLM_PROXY")
    if binary and Path(binary).is_file():
        return Path(binary)
    reason = "LiteLLM Proxy is not provisioned (run `make servers`)"
    if os.environ.get("MODELDESK_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class LiteLLMProxy(ServerProcess):
    """`litellm --config config` with exactly the environment variables in `env` (plus PATH).

    Only the process we started is ever signalled.
    """

    name = "LiteLLM Proxy"
    ready_path = "/health/liveliness"
    not_ready = "not live"
    poll_s = 0.1
    stop_wait_s = 15.0
    log_lines = 30

    def __init__(self, config: Path, env: Mapping[str, str]) -> None:
        self.binary = proxy_binary()
        super().__init__(log_prefix="litellm-proxy-")
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

    def start(self, timeout_s: float = 180.0) -> LiteLLMProxy:
        args = [str(self.binary), "--config", str(self._config), "--host", "127.0.0.1", "--port", str(self.port)]
        self._launch(args, self._env, timeout_s, cwd=self._scratch)
        return self

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._scratch, ignore_errors=True)
