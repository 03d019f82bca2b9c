"""End-to-end fixtures: a real llama-server, and a record of every network connection made."""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from tests.servers.llama import LlamaServer


class ConnectionLog:
    """Every outgoing socket connect and name lookup of this process, via an audit hook.

    Audit hooks cannot be removed, so one hook is installed for the session and records only while
    a test has switched it on.
    """

    def __init__(self) -> None:
        self.recording = False
        self.connects: list[tuple[int, object]] = []
        self.lookups: list[object] = []
        self._lock = threading.Lock()

    def hook(self, event: str, args: tuple) -> None:
        if not self.recording:
            return
        if event == "socket.connect":
            sock, address = args
            with self._lock:
                self.connects.append((sock.family, address))
        elif event == "socket.getaddrinfo":
            with self._lock:
                self.lookups.append(args[0])

    def internet_connects(self) -> list[object]:
        with self._lock:
            return [addr for family, addr in self.connects if family in (socket.AF_INET, socket.AF_INET6)]


_LOG = ConnectionLog()
sys.addaudithook(_LOG.hook)


@pytest.fixture
def connection_log():
    _LOG.connects.clear()
    _LOG.lookups.clear()
    _LOG.recording = True
    yield _LOG
    _LOG.recording = False


@pytest.fixture(scope="module")
def llama_server():
    # --ignore-eos: the tiny base model may end a reply at any token; Stop needs a reply that runs
    # until stopped, and "complete" replies are bounded by max tokens instead.
    server = LlamaServer(extra_args=("--ignore-eos",))
    server.start()
    yield server
    server.stop()
