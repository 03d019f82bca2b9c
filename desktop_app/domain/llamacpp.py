"""llama.cpp's llama-server as ModelDesk sees it: what a server reports, and how to start one.

Plain data and pure functions only. `ManagedServerSpec.command()` builds the command line, so what
ModelDesk would run can be checked (and shown) without starting anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from desktop_app.domain.errors import DomainError, domain_error

BINARY_NAME = "llama-server"
BINARY_NOT_FOUND = (
    "llama-server was not found: install llama.cpp from the llama.cpp pane's Local engine box, "
    "set the path of one there, or put it on PATH."
)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_CTX = 4096
DEFAULT_MODELS_MAX = 2


@domain_error
class BinaryNotFound(DomainError):
    """No llama-server executable at the configured path nor on PATH."""


@domain_error
class ServerStartFailed(DomainError):
    """The server process ended (or never answered) while it was starting."""

    exit_code: int | None = None


class RouterModelStatus(StrEnum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    SLEEPING = "sleeping"


@dataclass(frozen=True, slots=True)
class RouterModel:
    """One model a router-mode server can serve (an entry of its `GET /models`)."""

    id: str
    path: str = ""
    status: RouterModelStatus = RouterModelStatus.UNLOADED
    failed: bool = False  # the last load attempt ended with the instance exiting
    exit_code: int | None = None

    @property
    def active(self) -> bool:
        """Loaded, loading or asleep: it holds (or is taking) memory."""
        return self.status is not RouterModelStatus.UNLOADED


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What one llama-server said about itself at one moment."""

    url: str
    healthy: bool = False
    loading: bool = False  # /health answered 503: the model is still being loaded
    model_alias: str = ""  # router mode: the loaded models' ids, comma-separated
    model_path: str = ""
    n_ctx: int | None = None  # per server, as configured with -c
    total_slots: int | None = None
    busy_slots: int | None = None
    build: str = ""
    router_mode: bool = False
    models: tuple[RouterModel, ...] = ()  # router mode only

    @property
    def loaded_models(self) -> tuple[RouterModel, ...]:
        return tuple(m for m in self.models if m.status is RouterModelStatus.LOADED)


def builtin_template_args(name: str) -> tuple[str, ...]:
    """Arguments that make llama-server use one of its built-in chat templates (e.g. "gemma").

    `--chat-template NAME` alone is read as a literal Jinja template: it needs `--no-jinja`.
    """
    return ("--no-jinja", "--chat-template", name)


def presets_ini(sections: Mapping[str, Mapping[str, str | int | float | bool]]) -> str:
    """A router presets file: `{"*": {"jinja": False, "chat-template": "gemma"}}` -> INI text.

    Section "*" applies to every model; other sections are model ids; keys are CLI flag names.
    """
    lines: list[str] = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ManagedServerSpec:
    """How to run one llama-server: a single model (`model`) or a router over `models_dir`.

    `extra_args` go to the command line as they are; this is where chat-template choices belong
    (see `builtin_template_args`): many GGUFs carry a good template and need none.
    """

    model: Path | None = None
    models_dir: Path | None = None
    binary: str = ""  # empty: the pane's setting, then PATH
    ctx: int = DEFAULT_CTX  # 0: the model's own (trained) context length
    threads: int | None = None  # None: llama-server decides
    gpu_layers: int | None = None  # None: llama-server decides
    port: int = 0  # 0: a free port is picked at start
    host: str = DEFAULT_HOST
    alias: str = ""  # the model name clients use; empty: the file name without .gguf
    extra_args: tuple[str, ...] = ()
    models_max: int = DEFAULT_MODELS_MAX  # router mode
    presets: str = ""  # router mode: INI text for --models-preset (see `presets_ini`)
    env: Mapping[str, str] = field(default_factory=dict)  # added to the child's environment only

    def __post_init__(self) -> None:
        if (self.model is None) == (self.models_dir is None):
            raise ValueError("a server spec needs exactly one of a model file or a models folder")

    @property
    def router(self) -> bool:
        return self.models_dir is not None

    @property
    def title(self) -> str:
        """The model file's or the folder's name, for lists and log headers."""
        target = self.models_dir if self.models_dir is not None else self.model
        assert target is not None
        return target.name

    def command(self, binary: Path | str, port: int, presets_file: Path | None = None) -> list[str]:
        args = [str(binary)]
        if self.router:
            args += ["--models-dir", str(self.models_dir), "--models-max", str(self.models_max)]
            if presets_file is not None:
                args += ["--models-preset", str(presets_file)]
        else:
            # Without --alias, clients would have to name the model by its full path.
            assert self.model is not None
            args += ["-m", str(self.model), "--alias", self.alias or self.model.stem]
        args += ["--host", self.host, "--port", str(port), "-c", str(self.ctx)]
        if self.threads is not None:
            args += ["-t", str(self.threads)]
        if self.gpu_layers is not None:
            args += ["-ngl", str(self.gpu_layers)]
        args += list(self.extra_args)
        return args


class ManagedStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"


@dataclass(frozen=True, slots=True)
class ManagedState:
    """Where a server ModelDesk started stands; `log_tail` is filled when it stopped or crashed."""

    status: ManagedStatus = ManagedStatus.STOPPED
    url: str = ""
    pid: int | None = None
    exit_code: int | None = None
    log_tail: tuple[str, ...] = ()
    message: str = ""  # one sentence for the user when something went wrong

    @property
    def alive(self) -> bool:
        return self.status in (ManagedStatus.STARTING, ManagedStatus.RUNNING)


def describe_exit(code: int | None) -> str:
    """ "exit code 1" or "signal 9 (killed)" for an asyncio subprocess return code."""
    if code is None:
        return "an unknown status"
    if code < 0:
        names = {2: "interrupted", 6: "aborted", 9: "killed", 11: "segmentation fault", 15: "terminated"}
        name = names.get(-code)
        return f"signal {-code} ({name})" if name else f"signal {-code}"
    return f"exit code {code}"


# "0.00.014.648 E gguf_init_from_reader: ..." (a router prefixes its models' lines with "[port] ").
_LOG_PREFIX = re.compile(r"^(?:\[\d+\]\s*)?\d+\.\d+\.\d+\.\d+\s+(?P<level>[A-Z])\s+")


def why_it_stopped(lines: Sequence[str]) -> str:
    """The log line that best says why a server stopped: its first error, else its last line.

    llama-server logs the cause first ("invalid magic characters...") and consequences after it.
    """
    cleaned: list[tuple[str, str]] = []
    for line in lines:
        match = _LOG_PREFIX.match(line)
        text = line[match.end() :].strip() if match else line.strip()
        if text and not text.startswith("$ "):
            cleaned.append((match.group("level") if match else "", text))
    for level, text in cleaned:
        if level == "E" or text.lower().startswith("error"):
            return text
    return cleaned[-1][1] if cleaned else ""
