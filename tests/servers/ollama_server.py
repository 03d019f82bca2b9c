"""A strict loopback server speaking Ollama's REST API (`/api/*`), with switches for faults.

No Ollama binary can be had on these machines, so the Ollama pane and service are tested against
this server, written to follow the wire format of the real one (ollama/ollama server/routes.go,
server/download.go, api/types.go):

* `GET /` "Ollama is running", `GET /api/version`, `GET /api/tags`, `POST /api/show`, `GET /api/ps`
  (HEAD too where Ollama answers it).
* `POST /api/pull` streams ndjson: "pulling manifest", one line per progress tick of each layer
  {status: "pulling <12 hex>", digest, total, completed} (`completed`/`total` left out while 0),
  "verifying sha256 digest", "writing manifest", {status: "success"}. Failures mid-stream are an
  {"error": ...} line inside the 200 response. Bytes fetched stay in the blob's partial file when
  the client leaves, so the next pull of that blob resumes from them; two pulls of one blob share
  one download, which stops when the last of them leaves.
* `DELETE /api/delete` (JSON body), `POST /api/copy`, load and unload through `POST /api/generate`
  with no prompt (done_reason "load" / "unload", keep_alive parsed like Ollama does).
* `POST /api/chat` and prompted `/api/generate` answer a short canned reply, or, given
  `chat_upstream` (a real llama-server's base URL), forward to its streaming
  `/v1/chat/completions` and write its text back as Ollama's ndjson lines (or one JSON object for
  `stream: false`) with done_reason and the token counts and durations; upstream failures become
  Ollama's error status or mid-stream {"error": ...} line, and a client that leaves closes the
  upstream request. The translation is in `tests.servers.ollama_chat`.
* Strictness: 405 with Allow for a wrong method, 404 text/plain `404 page not found` for an unknown
  path, 400 for a missing body, an invalid name or a bad keep_alive, and an optional bearer key.

Switches for tests and benchmarks (safe to set from any thread): `tick_s` and `bytes_per_tick`
(the download pace), `disk_free` (bytes the fake disk still takes; then "no space left on
device"), `drop_pulls(after_lines, times)` (cut the connection mid-download).

In-process::

    with OllamaServer() as server:      # or: url = server.start(); ...; server.stop()
        server.base_url                  # http://127.0.0.1:PORT

As a subprocess: ``python -m tests.servers.ollama_server [--port N] [--tick-s S]
[--bytes-per-tick B] [--model NAME=BYTES] [--installed NAME] [--chat-upstream URL]`` prints
``PORT=<n>`` first and serves until SIGTERM/SIGINT. Only the standard library is imported (and
httpx, once a chat is forwarded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from tests.servers import ollama_chat
from tests.servers._http import Exchange as _Exchange
from tests.servers._http import LoopbackServer, run_main
from tests.servers.ollama_chat import Delta, Finished, ReplyError

VERSION = "0.12.6"
MODELS_DIR = "/usr/share/ollama/.ollama/models"  # where the "disk full" error line says it wrote
MAX_BODY = 16 * 1024 * 1024
DEFAULT_KEEP_ALIVE_S = 300.0
FOREVER = datetime(2318, 1, 1, tzinfo=UTC)  # what a negative keep_alive shows in /api/ps
MAX_CATCH_UP = 200  # progress ticks written in one go when the loop woke up late

ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD"),
    "/api/version": ("GET", "HEAD"),
    "/api/tags": ("GET", "HEAD"),
    "/api/ps": ("GET",),
    "/api/show": ("POST",),
    "/api/pull": ("POST",),
    "/api/delete": ("DELETE",),
    "/api/copy": ("POST",),
    "/api/generate": ("POST",),
    "/api/chat": ("POST",),
}

_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"
_NAME = re.compile(
    rf"^(?:(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]{{0,349}}(?::\d{{1,5}})?)/)??"
    rf"(?:(?P<namespace>{_PART})/)?(?P<model>{_PART})(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,79}}))?$"
)
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def short_name(name: str) -> str | None:
    """Ollama's display form of a model name ("llama3.2" -> "llama3.2:latest"); None if invalid."""
    match = _NAME.match(name.strip()) if name else None
    if match is None:
        return None
    host, namespace = match["host"], match["namespace"]
    tag = match["tag"] or "latest"
    prefix = ""
    if host and host != "registry.ollama.ai":
        prefix = f"{host}/{namespace or 'library'}/"
    elif namespace and namespace != "library":
        prefix = f"{namespace}/"
    return f"{prefix}{match['model']}:{tag}"


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now().astimezone()


def _rfc3339(moment: datetime) -> str:
    """Go's RFC3339Nano: nanosecond digits (the last three are zero here) and the zone offset."""
    text = moment.isoformat(timespec="microseconds")
    return text[:26] + "000" + text[26:] if moment.utcoffset() else text[:26] + "000Z"


def parse_keep_alive(value: Any) -> float:
    """Seconds (negative: forever), as Ollama's api.Duration reads JSON; ValueError with its text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("json: cannot unmarshal keep_alive")
    if not isinstance(value, str):
        return float(value)
    text, total, sign = value, 0.0, 1.0
    if text in ("0", "+0", "-0"):
        return 0.0
    if text[:1] in "+-" and text:
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    if not text:
        raise ValueError(f'time: invalid duration "{value}"')
    while text:
        match = re.match(r"^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)?", text)
        if match is None:
            raise ValueError(f'time: invalid duration "{value}"')
        if match[2] is None:
            raise ValueError(f'time: missing unit in duration "{value}"')
        total += float(match[1]) * _UNITS[match[2]]
        text = text[match.end():]
    return sign * total


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class CatalogModel:
    """A model the fake registry offers: what a pull fetches and what show/tags report."""

    name: str
    size: int
    family: str = "llama"
    parameter_size: str = "1.2B"
    quantization: str = "Q4_K_M"
    context_length: int = 131072
    capabilities: tuple[str, ...] = ("completion", "tools")
    template: str = "{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>"
    system: str = ""
    parameters: str = 'stop                           "<|user|>"\ntemperature                    0.7'
    license: str = "MIT License\n\nPermission is hereby granted, free of charge, to any person..."

    @property
    def layers(self) -> tuple[Layer, ...]:
        small = [
            Layer(_sha(f"{self.name}/template"), len(self.template.encode()) or 1,
                  "application/vnd.ollama.image.template"),
            Layer(_sha(f"{self.name}/license"), len(self.license.encode()) or 1,
                  "application/vnd.ollama.image.license"),
            Layer(_sha(f"{self.name}/params"), len(self.parameters.encode()) or 1,
                  "application/vnd.ollama.image.params"),
        ]
        if self.system:
            small.append(Layer(_sha(f"{self.name}/system"), len(self.system.encode()),
                               "application/vnd.ollama.image.system"))
        weights = max(1, self.size - sum(layer.size for layer in small))
        return (Layer(_sha(f"{self.name}/model"), weights, "application/vnd.ollama.image.model"),
                *small)

    @property
    def digest(self) -> str:
        return _sha(f"{self.name}/manifest")[7:]

    @property
    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "gguf", "family": self.family,
                "families": [self.family], "parameter_size": self.parameter_size,
                "quantization_level": self.quantization}


def catalog_model(name: str, size: int, **details: Any) -> CatalogModel:
    full = short_name(name)
    if full is None:
        raise ValueError(f"invalid model name {name!r}")
    return CatalogModel(name=full, size=size, **details)


DEFAULT_CATALOG: tuple[CatalogModel, ...] = (
    catalog_model("llama3.2:1b", 1_321_098_329, parameter_size="1.2B"),
    catalog_model("llama3.2:latest", 2_019_393_189, parameter_size="3.2B"),
    catalog_model("qwen2.5:0.5b", 397_821_319, family="qwen2", parameter_size="494.03M",
                  context_length=32768),
    catalog_model("gemma3:270m", 291_554_930, family="gemma3", parameter_size="268.10M",
                  quantization="Q8_0", context_length=32768, capabilities=("completion",),
                  system="You are a helpful assistant."),
    catalog_model("mistral:latest", 4_113_301_824, parameter_size="7.2B", context_length=32768),
    catalog_model("nomic-embed-text:latest", 274_302_450, family="nomic-bert",
                  parameter_size="137M", quantization="F16", context_length=2048,
                  capabilities=("embedding",)),
    catalog_model("tiny:latest", 3_000_000, parameter_size="15M", context_length=2048),
)


@dataclass
class Installed:
    model: CatalogModel
    modified_at: datetime


@dataclass
class Running:
    name: str
    expires_at: datetime


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any | None  # parsed JSON body, None when absent or unparsable


class ApiError(Exception):
    """A non-2xx answer: {"error": message} as JSON, or plain text for the router's own 404/405."""

    def __init__(self, status: int, message: str, *, text: bool = False,
                 headers: tuple[tuple[str, str], ...] = (), close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.text, self.headers, self.close = (
            status, message, text, headers, close)


class _Cut(Exception):
    """The drop switch fired: the connection is closed without finishing the response."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(status: int, body: bytes, content_type: str | None, *, head_only: bool = False,
              extra: tuple[tuple[str, str], ...] = (), close: bool = False) -> bytes:
    headers = [("Content-Type", content_type)] if content_type else []
    headers += [*extra, ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    return _head(status, headers) + (b"" if head_only else body)


def _json(status: int, payload: Any, head_only: bool = False) -> bytes:
    return _response(status, _dumps(payload), "application/json; charset=utf-8", head_only=head_only)


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes = b""


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ApiError(400, "400 Bad Request", text=True, close=True) from None
        return None
    except asyncio.LimitOverrunError:
        raise ApiError(431, "431 Request Header Fields Too Large", text=True, close=True) from None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise ApiError(400, "400 Bad Request", text=True, close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ApiError(400, "400 Bad Request", text=True, close=True)
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return _Request(parts[0], parts[1], headers)


async def _read_body(req: _Request, reader: asyncio.StreamReader) -> bytes:
    if "transfer-encoding" in req.headers:
        raise ApiError(501, "501 Not Implemented", text=True, close=True)
    length = req.headers.get("content-length")
    if length is None:
        return b""
    if not length.isdigit():
        raise ApiError(400, "400 Bad Request", text=True, close=True)
    if int(length) > MAX_BODY:
        raise ApiError(413, "413 Request Entity Too Large", text=True, close=True)
    return await reader.readexactly(int(length))


def _body(req: _Request, request_type: str, fields: dict[str, type]) -> dict[str, Any]:
    """The JSON body as Go's ShouldBindJSON sees it: missing, malformed or mistyped fields -> 400."""
    if not req.raw_body.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(req.raw_body)
    except ValueError:
        raise ApiError(400, "invalid character looking for beginning of value") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"json: cannot unmarshal {type(body).__name__} into Go value of type "
                            f"api.{request_type}")
    for name, kind in fields.items():
        value = body.get(name)
        if value is None or kind is object:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ApiError(400, f"json: cannot unmarshal {type(value).__name__} into Go struct "
                                f"field {request_type}.{name} of type {kind.__name__}")
    return body


@dataclass
class _Download:
    """One blob being fetched; every pull that needs it reads progress from its own queue."""

    layer: Layer
    waiters: list[asyncio.Queue[int | str | None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class OllamaServer(LoopbackServer):
    """See the module docstring. State is guarded by one lock, so tests may poke it from their thread."""

    thread_name = "ollama-test-server"
    start_error = "the Ollama test server failed to start"
    bad_request = ApiError
    abort_exceptions = (_Cut,)
    close_on_pipelining = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 catalog: Iterable[CatalogModel] = DEFAULT_CATALOG,
                 installed: Iterable[str] = (), api_key: str | None = None,
                 tick_s: float = 0.06, bytes_per_tick: int = 1 << 20,
                 disk_free: int | None = None, version: str = VERSION,
                 chat_upstream: str | None = None) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.chat_upstream = chat_upstream  # a llama-server base URL; None: the canned reply
        self.version = version
        self.tick_s = tick_s
        self.bytes_per_tick = bytes_per_tick
        self.disk_free = disk_free  # None: unlimited
        self.size_vram_fraction = 1.0  # share of a loaded model held in GPU memory
        self._lock = threading.Lock()
        self._catalog: dict[str, CatalogModel] = {m.name: m for m in catalog}
        self._installed: dict[str, Installed] = {}
        self._blobs: dict[str, int] = {}  # digest -> bytes on disk (== size: complete)
        self._running: dict[str, Running] = {}
        self._downloads: dict[str, _Download] = {}
        self._drops: list[int] = []  # per future pull: progress lines before the connection is cut
        self._requests: list[RecordedRequest] = []
        self._upstream_requests: list[dict[str, Any]] = []
        self.pull_lines = 0  # progress lines written by all pulls so far
        self.client_disconnects = 0
        for name in installed:
            self.install(name)

    # -- test-side controls ---------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def upstream_requests(self) -> list[dict[str, Any]]:
        """The OpenAI requests forwarded to `chat_upstream`, oldest first."""
        with self._lock:
            return list(self._upstream_requests)

    def add_to_catalog(self, model: CatalogModel) -> None:
        with self._lock:
            self._catalog[model.name] = model

    def install(self, name: str, modified_at: datetime | None = None) -> None:
        """Put a catalog model on the fake disk, as if it had been pulled."""
        full = short_name(name)
        with self._lock:
            model = self._catalog[full] if full in self._catalog else None
            if model is None:
                raise KeyError(name)
            for layer in model.layers:
                self._blobs[layer.digest] = layer.size
            self._installed[model.name] = Installed(model, modified_at or _now())

    def installed_names(self) -> list[str]:
        with self._lock:
            return sorted(self._installed)

    def running_names(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def blob_bytes(self, digest: str) -> int:
        with self._lock:
            return self._blobs.get(digest, 0)

    def layers_of(self, name: str) -> tuple[Layer, ...]:
        with self._lock:
            return self._catalog[short_name(name) or name].layers

    def drop_pulls(self, after_lines: int = 5, times: int = 1) -> None:
        """Cut the connection of the next `times` pulls after `after_lines` download progress lines."""
        with self._lock:
            self._drops.extend([after_lines] * times)

    # -- connections: hooks of LoopbackServer ---------------------------------------------
    def _background_tasks(self) -> list[asyncio.Task[None]]:
        return [d.task for d in self._downloads.values() if d.task]

    async def _read(self, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> _Request | None:
        req = await _read_request(reader)
        if req is not None:
            req.raw_body = await _read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        assert isinstance(exc, ApiError)
        return _response(exc.status, exc.message.encode(), "text/plain", close=True)

    def _record(self, req: _Request, conn: int) -> None:
        try:
            body = json.loads(req.raw_body) if req.raw_body else None
        except ValueError:
            body = None
        with self._lock:
            self._requests.append(RecordedRequest(req.method, req.path.split("?", 1)[0],
                                                  dict(req.headers), body))

    def _client_left(self) -> None:
        with self._lock:
            self.client_disconnects += 1

    async def _respond(self, req: _Request, writer: asyncio.StreamWriter, state: _Exchange) -> bool:
        try:
            result = await self._route(req, writer, state)
        except ApiError as exc:
            if exc.text:
                data = _response(exc.status, exc.message.encode(), "text/plain",
                                 extra=exc.headers, close=exc.close)
            else:
                data = _json(exc.status, {"error": exc.message})
            writer.write(data)
            await writer.drain()
            return not exc.close
        if isinstance(result, bytes):
            writer.write(result)
            await writer.drain()
            return True
        return result

    async def _route(self, req: _Request, writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
        path = req.path.split("?", 1)[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            raise ApiError(404, "404 page not found", text=True)
        if req.method not in allowed:
            raise ApiError(405, "405 method not allowed", text=True,
                           headers=(("Allow", ", ".join(allowed)),))
        if self.api_key is not None:
            auth = req.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:].strip() != self.api_key:
                raise ApiError(401, "unauthorized")
        head = req.method == "HEAD"
        if path == "/":
            return _response(200, b"Ollama is running", "text/plain; charset=utf-8", head_only=head)
        if path == "/api/version":
            return _json(200, {"version": self.version}, head)
        if path == "/api/tags":
            return _json(200, {"models": self._tags()}, head)
        if path == "/api/ps":
            return _json(200, {"models": self._ps()})
        if path == "/api/show":
            return _json(200, self._show(_body(req, "ShowRequest", {"model": str, "name": str,
                                                                    "verbose": bool})))
        if path == "/api/delete":
            self._delete(_body(req, "DeleteRequest", {"model": str, "name": str}))
            return _response(200, b"", None)
        if path == "/api/copy":
            self._copy(_body(req, "CopyRequest", {"source": str, "destination": str}))
            return _response(200, b"", None)
        if path == "/api/generate":
            return await self._generate(_body(req, "GenerateRequest", {
                "model": str, "prompt": str, "system": str, "stream": bool, "keep_alive": object,
                "options": dict, "format": object}), writer, state)
        if path == "/api/chat":
            return await self._chat(_body(req, "ChatRequest", {
                "model": str, "messages": list, "stream": bool, "keep_alive": object,
                "options": dict, "format": object}), writer, state)
        return await self._pull(_body(req, "PullRequest", {"model": str, "name": str, "stream": bool,
                                                            "insecure": bool}), writer, state)

    # -- simple endpoints -----------------------------------------------------------------
    def _tags(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = sorted(self._installed.values(), key=lambda i: i.modified_at, reverse=True)
        return [{"name": i.model.name, "model": i.model.name, "modified_at": _rfc3339(i.modified_at),
                 "size": i.model.size, "digest": i.model.digest, "details": i.model.details}
                for i in entries]

    def _ps(self) -> list[dict[str, Any]]:
        now = _now()
        with self._lock:
            for name in [n for n, r in self._running.items() if r.expires_at <= now]:
                del self._running[name]
            running = [(r, self._installed[r.name].model) for r in self._running.values()
                       if r.name in self._installed]
        return [{"name": m.name, "model": m.name, "size": m.size, "digest": m.digest,
                 "details": m.details, "expires_at": _rfc3339(r.expires_at),
                 "size_vram": int(m.size * self.size_vram_fraction),
                 "context_length": min(4096, m.context_length)} for r, m in running]

    def _find(self, name: str, message: str) -> Installed:
        full = short_name(name)
        with self._lock:
            found = self._installed.get(full) if full else None
        if found is None:
            raise ApiError(404, message)
        return found

    def _show(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise ApiError(400, "model is required")
        installed = self._find(name, f"model '{short_name(name) or name}' not found")
        model = installed.model
        modelfile = (f"# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on "
                     f"this, replace FROM with:\n# FROM {model.name}\n\n"
                     f"FROM {MODELS_DIR}/blobs/sha256-{model.layers[0].digest[7:]}\n"
                     f'TEMPLATE """{model.template}"""\n')
        if model.system:
            modelfile += f'SYSTEM """{model.system}"""\n'
        modelfile += "".join(f"PARAMETER {' '.join(line.split(None, 1))}\n"
                             for line in model.parameters.splitlines())
        modelfile += f'LICENSE """{model.license}"""\n'
        reply: dict[str, Any] = {
            "license": model.license, "modelfile": modelfile, "parameters": model.parameters,
            "template": model.template, "details": model.details,
            "model_info": {"general.architecture": model.family,
                           "general.parameter_count": 1_235_814_432,
                           f"{model.family}.context_length": model.context_length,
                           f"{model.family}.embedding_length": 2048},
            "capabilities": list(model.capabilities),
            "modified_at": _rfc3339(installed.modified_at),
        }
        if model.system:
            reply["system"] = model.system
        return reply

    def _delete(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        full = short_name(name)
        with self._lock:
            found = self._installed.pop(full, None) if full else None
            if found is not None:
                self._running.pop(found.model.name, None)
                still_used = {l.digest for i in self._installed.values() for l in i.model.layers}
                for layer in found.model.layers:
                    if layer.digest not in still_used:
                        self._blobs.pop(layer.digest, None)
        if found is None:
            raise ApiError(404, f"model '{name}' not found")

    def _copy(self, body: dict[str, Any]) -> None:
        source, destination = body.get("source") or "", body.get("destination") or ""
        target = short_name(destination)
        if target is None:
            raise ApiError(400, f"destination \"{destination}\" is invalid")
        src = self._find(source, f'model "{source}" not found')
        with self._lock:
            self._installed[target] = Installed(replace(src.model, name=target), _now())

    async def _generate(self, body: dict[str, Any], writer: asyncio.StreamWriter,
                        state: _Exchange) -> bytes | bool:
        arrived = time.monotonic_ns()
        name = body.get("model") or ""
        if not name:
            raise ApiError(400, "model is required")
        keep_alive = DEFAULT_KEEP_ALIVE_S
        if "keep_alive" in body and body["keep_alive"] is not None:
            try:
                keep_alive = parse_keep_alive(body["keep_alive"])
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        installed = self._find(name, f"model '{name}' not found")
        if not body.get("prompt"):
            # Load / unload: one JSON object, even when a stream was asked for.
            with self._lock:
                if keep_alive == 0:
                    self._running.pop(installed.model.name, None)
                else:
                    self._running[installed.model.name] = Running(installed.model.name,
                                                                 self._expiry(keep_alive))
            return _json(200, {"model": name, "created_at": _rfc3339(datetime.now(UTC)),
                               "response": "", "done": True,
                               "done_reason": "unload" if keep_alive == 0 else "load"})
        self._mark_used(installed.model.name, keep_alive)
        return await self._reply("generate", name, body, body.get("system") or installed.model.system,
                                 arrived, writer, state)

    async def _chat(self, body: dict[str, Any], writer: asyncio.StreamWriter,
                    state: _Exchange) -> bytes | bool:
        arrived = time.monotonic_ns()
        name = body.get("model") or ""
        if not name:
            raise ApiError(400, "model is required")
        installed = self._find(name, f"model '{name}' not found")
        keep_alive = DEFAULT_KEEP_ALIVE_S
        if body.get("keep_alive") is not None:
            try:
                keep_alive = parse_keep_alive(body["keep_alive"])
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        self._mark_used(installed.model.name, keep_alive)
        return await self._reply("chat", name, body, installed.model.system, arrived, writer, state)

    def _expiry(self, keep_alive: float) -> datetime:
        return FOREVER if keep_alive < 0 else _now() + timedelta(seconds=keep_alive)

    def _mark_used(self, name: str, keep_alive: float) -> None:
        with self._lock:
            if keep_alive == 0:
                self._running.pop(name, None)
            else:
                self._running[name] = Running(name, self._expiry(keep_alive))

    async def _reply(self, kind: str, name: str, body: dict[str, Any], system: str, arrived: int,
                     writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
        """A chat or prompted generate: the canned words, or llama-server's when forwarding."""
        if self.chat_upstream is None:
            pieces = ollama_chat.canned_reply()
        else:
            try:
                if kind == "chat":
                    messages = ollama_chat.chat_messages(body.get("messages") or [], system)
                else:
                    messages = ollama_chat.generate_messages(body["prompt"], system)
                request = ollama_chat.upstream_request(name, messages, body.get("options"),
                                                       body.get("format"))
            except ReplyError as exc:
                raise ApiError(exc.status, exc.message) from None
            with self._lock:
                self._upstream_requests.append(request)
            pieces = ollama_chat.forwarded_reply(self.chat_upstream, request, arrived)
        # Closing the pieces closes the upstream request, also when the client leaves mid-reply.
        async with contextlib.aclosing(pieces):
            try:
                if body.get("stream") is False:  # absent or null: a stream, as in Ollama
                    return await self._whole_reply(kind, name, pieces)
                return await self._streamed_reply(kind, name, pieces, writer, state)
            except ReplyError as exc:  # before the first line: a status and {"error": ...}
                raise ApiError(exc.status, exc.message) from None

    @staticmethod
    async def _whole_reply(kind: str, name: str, pieces: AsyncIterator[Delta | Finished]) -> bytes:
        content: list[str] = []
        thinking: list[str] = []
        finished = Finished("stop", {})
        async for piece in pieces:
            if isinstance(piece, Finished):
                finished = piece
            else:
                content.append(piece.content)
                thinking.append(piece.thinking)
        whole = Delta("".join(content), "".join(thinking))
        created = _rfc3339(datetime.now(UTC))
        return _json(200, ollama_chat.reply_line(kind, name, created, whole, finished))

    @staticmethod
    async def _streamed_reply(kind: str, name: str, pieces: AsyncIterator[Delta | Finished],
                              writer: asyncio.StreamWriter, state: _Exchange) -> bool:
        started = False
        try:
            async for piece in pieces:
                delta, finished = (Delta(""), piece) if isinstance(piece, Finished) else (piece, None)
                line = ollama_chat.reply_line(kind, name, _rfc3339(datetime.now(UTC)), delta, finished)
                data = _frame(_dumps(line) + b"\n")
                if not started:
                    started = state.in_flight = True
                    data = _head(200, [("Content-Type", "application/x-ndjson"),
                                       ("Transfer-Encoding", "chunked")]) + data
                writer.write(data)
                await writer.drain()
        except ReplyError as exc:
            if not started:
                raise
            # Ollama's streamResponse: once lines went out, the error is one more line.
            writer.write(_frame(_dumps({"error": exc.message}) + b"\n"))
        writer.write(b"0\r\n\r\n")
        state.in_flight = False
        await writer.drain()
        return True

    # -- pull -----------------------------------------------------------------------------
    async def _pull(self, body: dict[str, Any], writer: asyncio.StreamWriter,
                    state: _Exchange) -> bytes | bool:
        name = body.get("model") or body.get("name") or ""
        full = short_name(name)
        if full is None:
            raise ApiError(400, "invalid model name")
        with self._lock:
            drop_after = self._drops.pop(0) if self._drops else None
        if body.get("stream") is False:
            lines: list[dict[str, Any]] = []
            await self._pull_lines(full, lines.append, None)
            last = lines[-1]
            if "error" in last:
                return _json(500, last)
            return _json(200, last)

        state.in_flight = True
        writer.write(_head(200, [("Content-Type", "application/x-ndjson"),
                                 ("Transfer-Encoding", "chunked")]))
        pending: list[bytes] = []

        def send(line: dict[str, Any]) -> None:
            pending.append(_dumps(line) + b"\n")

        async def flush() -> None:
            if pending:
                writer.write(_frame(b"".join(pending)))
                pending.clear()
                await writer.drain()

        await self._pull_lines(full, send, flush, drop_after=drop_after, writer=writer)
        await flush()
        writer.write(b"0\r\n\r\n")
        state.in_flight = False
        await writer.drain()
        return True

    async def _pull_lines(self, name: str, send: Callable[[dict[str, Any]], None],
                          flush: Callable[[], Any] | None, *, drop_after: int | None = None,
                          writer: asyncio.StreamWriter | None = None) -> None:
        async def out() -> None:
            if flush is not None:
                await flush()

        send({"status": "pulling manifest"})
        await out()
        with self._lock:
            model = self._catalog.get(name)
        if model is None:
            send({"error": "pull model manifest: file does not exist"})
            return
        lines_written = 0
        for layer in model.layers:
            status = f"pulling {layer.digest[7:19]}"

            def line(done: int, layer: Layer = layer, status: str = status) -> dict[str, Any]:
                # Go's omitempty: completed (and total) are left out while 0.
                payload: dict[str, Any] = {"status": status, "digest": layer.digest, "total": layer.size}
                if done:
                    payload["completed"] = done
                return payload

            done = self.blob_bytes(layer.digest)
            if done >= layer.size:
                send(line(layer.size))
                await out()
                continue
            send(line(done))
            await out()
            queue = self._join_download(layer)
            try:
                while True:
                    item = await queue.get()
                    batch = [item]
                    while not queue.empty():
                        batch.append(queue.get_nowait())
                    finished = False
                    for entry in batch:
                        if entry is None:
                            finished = True
                            break
                        if isinstance(entry, str):
                            send({"error": entry})
                            return
                        send(line(entry))
                        lines_written += 1
                        with self._lock:
                            self.pull_lines += 1
                        if drop_after is not None and lines_written >= drop_after:
                            await out()
                            if writer is not None:
                                writer.write(b"40\r\n{\"status\":\"pulling")  # half a chunk, then gone
                                await writer.drain()
                            raise _Cut
                    await out()
                    if finished:
                        break
            finally:
                self._leave_download(layer, queue)
        send({"status": "verifying sha256 digest"})
        await out()
        await asyncio.sleep(min(self.tick_s, 0.05))
        send({"status": "writing manifest"})
        with self._lock:
            self._installed[model.name] = Installed(model, _now())
        send({"status": "success"})

    def _join_download(self, layer: Layer) -> asyncio.Queue[int | str | None]:
        queue: asyncio.Queue[int | str | None] = asyncio.Queue()
        download = self._downloads.get(layer.digest)
        if download is None or download.task is None or download.task.done():
            download = _Download(layer)
            self._downloads[layer.digest] = download
            download.task = asyncio.create_task(self._download(download))
        download.waiters.append(queue)
        return queue

    def _leave_download(self, layer: Layer, queue: asyncio.Queue[int | str | None]) -> None:
        download = self._downloads.get(layer.digest)
        if download is None:
            return
        with contextlib.suppress(ValueError):
            download.waiters.remove(queue)
        if not download.waiters:
            # Ollama stops a download nobody waits for; the bytes stay in the partial file.
            if download.task is not None:
                download.task.cancel()
            del self._downloads[layer.digest]

    async def _download(self, download: _Download) -> None:
        loop = asyncio.get_running_loop()
        layer = download.layer
        due = loop.time() + self.tick_s

        def publish(item: int | str | None) -> None:
            for waiter in download.waiters:
                waiter.put_nowait(item)

        while True:
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
                now = loop.time()
            tick = max(self.tick_s, 1e-6)
            steps = min(MAX_CATCH_UP, 1 + int((now - due) / tick))
            due = due + steps * tick if now - due < MAX_CATCH_UP * tick else now + tick
            for _ in range(steps):
                with self._lock:
                    done = self._blobs.get(layer.digest, 0)
                    step = min(self.bytes_per_tick, layer.size - done)
                    if self.disk_free is not None and step > self.disk_free:
                        self._blobs[layer.digest] = done + self.disk_free
                        self.disk_free = 0
                        full = True
                    else:
                        full = False
                        self._blobs[layer.digest] = done + step
                        if self.disk_free is not None:
                            self.disk_free -= step
                    done = self._blobs[layer.digest]
                if full:
                    publish(f"write {MODELS_DIR}/blobs/sha256-{layer.digest[7:]}-partial: "
                            "no space left on device")
                    return
                publish(done)
                if done >= layer.size:
                    publish(None)
                    return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback server speaking Ollama's /api/*")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tick-s", type=float, default=0.06, help="seconds between progress lines")
    parser.add_argument("--bytes-per-tick", type=int, default=1 << 20)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=BYTES",
                        help="add a model of that size to the catalog")
    parser.add_argument("--installed", action="append", default=[], metavar="NAME")
    parser.add_argument("--chat-upstream", metavar="URL",
                        help="a llama-server base URL to forward /api/chat and /api/generate to")
    args = parser.parse_args(argv)
    server = OllamaServer(port=args.port, tick_s=args.tick_s, bytes_per_tick=args.bytes_per_tick,
                          chat_upstream=args.chat_upstream)
    for spec in args.model:
        name, _, size = spec.partition("=")
        server.add_to_catalog(catalog_model(name, int(size)))
    for name in args.installed:
        server.install(name)
    run_main(server)


if __name__ == "__main__":
    main()
