"""What ModelDesk knows about an Ollama server: its models, what runs, and pulls in progress.

Plain values and pure functions; the wire format is read in services/local/ollama.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit

from desktop_app.domain.errors import DomainError, domain_error

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def normalize_host_url(text: str) -> str:
    """An address as typed ("localhost", "10.0.0.5:11434", "https://box/ollama") as a base URL.

    Without a scheme Ollama's own default applies: http and port 11434.
    """
    text = text.strip().rstrip("/")
    if not text:
        return DEFAULT_URL
    if "://" not in text:
        parts = urlsplit(f"http://{text}")
        port = parts.port or DEFAULT_PORT
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{parts.path}"
    return text


@dataclass(frozen=True, slots=True)
class OllamaHost:
    """An Ollama server; `key_ref` names a keyring entry (for a server behind an auth proxy)."""

    url: str = DEFAULT_URL
    key_ref: str | None = None
    label: str = "Local Ollama"

    @property
    def address(self) -> str:
        """host:port for sentences; a password written into the URL never shows."""
        netloc = urlsplit(self.url).netloc.rpartition("@")[2]
        return netloc or self.url

    @property
    def is_local(self) -> bool:
        """Whether Ollama's model files are on this machine's disk (so free space can be checked)."""
        return (urlsplit(self.url).hostname or "").lower() in LOCAL_HOSTS


@dataclass(frozen=True, slots=True)
class HostStatus:
    url: str
    reachable: bool
    version: str = ""
    error: DomainError | None = None

    @property
    def sentence(self) -> str:
        if self.reachable:
            return f"Ollama {self.version} at {OllamaHost(self.url).address}"
        assert self.error is not None
        return f"{self.error.message} {self.error.action}".strip()


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """One model of `/api/tags`; `capabilities` is empty when the Ollama is too old to list them."""

    name: str
    family: str
    parameter_size: str
    quantization: str
    size: int
    modified: datetime | None
    digest: str = ""
    capabilities: tuple[str, ...] = ()

    @property
    def can_chat(self) -> bool:
        """False for a model Ollama says cannot complete text (an embedding model); unknown counts as True."""
        return not self.capabilities or "completion" in self.capabilities


@dataclass(frozen=True, slots=True)
class ModelDetails:
    name: str
    parameters: str
    template: str
    system: str
    context_length: int | None
    capabilities: tuple[str, ...]
    license: str
    modelfile: str
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""


@dataclass(frozen=True, slots=True)
class RunningModel:
    name: str
    size: int
    size_vram: int
    expires_at: datetime | None
    context_length: int | None = None

    @property
    def gpu_share(self) -> float:
        return self.size_vram / self.size if self.size else 0.0


class PullState(StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (PullState.DONE, PullState.FAILED, PullState.CANCELLED)


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One snapshot of a pull, as published to listeners (at most ~20 a second)."""

    model: str
    status: str = ""
    layers: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    completed: int = 0
    total: int = 0
    bytes_per_s: float = 0.0
    eta_s: float | None = None
    done: bool = False
    error: DomainError | None = None
    state: PullState = PullState.RUNNING
    attempt: int = 1
    retry_in_s: float | None = None
    detail: str = ""  # a failure as Ollama worded it, for the details; the headline is `error`

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        return min(1.0, self.completed / self.total) if self.total else 0.0

    @property
    def layers_done(self) -> int:
        return sum(1 for completed, total in self.layers.values() if total and completed >= total)


@dataclass(frozen=True, slots=True)
class UnfinishedPull:
    """A pull that did not finish before the app last stopped, remembered so it can be resumed."""

    model: str
    host_url: str
    state: PullState
    completed: int = 0
    total: int = 0
    message: str = ""


@domain_error
class DiskFull(DomainError):
    path: str = ""


def canonical_name(name: str) -> str:
    """The name Ollama lists a model under: "llama3.2" -> "llama3.2:latest"."""
    name = name.strip()
    if not name:
        return name
    last = name.rpartition("/")[2]
    return name if ":" in last or "@" in last else f"{name}:latest"


_SYSTEM = re.compile(r'^SYSTEM\s+(?:"""(?P<block>.*?)"""|(?P<line>.*))$', re.MULTILINE | re.DOTALL)


def system_from_modelfile(modelfile: str) -> str:
    """The SYSTEM prompt of a Modelfile ("" if none); the show endpoint's own field may be absent."""
    match = _SYSTEM.search(modelfile)
    if match is None:
        return ""
    return (match["block"] if match["block"] is not None else match["line"] or "").strip()


def context_length_of(model_info: Mapping[str, object]) -> int | None:
    """`<architecture>.context_length` from GGUF metadata, as Ollama's show reports it."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    for key, value in model_info.items():
        if key.endswith(".context_length") and isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def format_bytes(count: float) -> str:
    """Decimal units as Ollama prints them: 1.3 GB, 398 MB, 12 kB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            value = count / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(count)} B"


def format_rate(bytes_per_s: float) -> str:
    return f"{format_bytes(bytes_per_s)}/s"


def format_duration(seconds: float) -> str:
    """45 s, 3 min 20 s, 2 h 5 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
