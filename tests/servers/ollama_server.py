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
  one download, which stops when the last of them leaves. The lines and the downloads are made by
  `PullMixin` in `tests.servers.ollama_pull`, with the model names and the catalog (`CatalogModel`,
  `catalog_model`, `DEFAULT_CATALOG`); this module frames them and keeps the installed models.
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
  A chat's `messages[].images` must be base64 strings (`ollama_chat.check_images`), as Go decodes them,
  for a model with the "vision" capability (`ollama_chat.check_sees`; gemma3:4b in the catalog).

Switches for tests and benchmarks (safe to set from any thread): `tick_s` and `bytes_per_tick`
(the download pace), `disk_free` (bytes the fake disk still takes; then "no space left on
device"), `drop_pulls(after_lines, times)` (cut the connection mid-download), `load_s` (how long
a model not in memory takes to load before a chat or a load is answered), `tags_error` ((status,
message): `/api/tags` fails as Ollama's ListHandler does), and the registry faults of `PullMixin`
(`registry_error`, `digest_mismatch`, `disk_full_rollback`). A model without the "completion"
capability (an embedding model) is refused chat and generate with Ollama's 400. Reading back:
`requests`, `installed_names()`, `running_names()`, `blob_bytes(digest)`, `layers_of(name)`,
`pull_lines`, `client_disconnects`, `upstream_requests`.

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
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from tests.servers import ollama_chat
from tests.servers._http import Exchange as _Exchange
from tests.servers._http import (
    HttpError,
    LoopbackServer,
    Request,
    end_chunked,
    frame,
    read_body,
    read_request,
    run_main,
    send,
)
from tests.servers.ollama_chat import Delta, Finished, ReplyError
from tests.servers.ollama_pull import (
    DEFAULT_CATALOG,
    MODELS_DIR,
    CatalogModel,
    ConnectionCut,
    Download,
    Layer,
    PullMixin,
    catalog_model,
    short_name,
)
from tests.servers.ollama_time import parse_keep_alive, rfc3339

VERSION = "0.12.6"
DEFAULT_KEEP_ALIVE_S = 300.0
FOREVER = datetime(2318, 1, 1, tzinfo=UTC)  # what a negative keep_alive shows in /api/ps

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

# Go's net/http answers a request it cannot read with the bare status line as plain text.
_UNREADABLE = {
    400: "400 Bad Request",
    413: "413 Request Entity Too Large",
    431: "431 Request Header Fields Too Large",
    501: "501 Not Implemented",
}


def _now() -> datetime:
    return datetime.now().astimezone()


def _keep_alive(body: dict[str, Any]) -> float:
    """A request's keep_alive in seconds: the default when absent or null, 400 when invalid."""
    if body.get("keep_alive") is None:
        return DEFAULT_KEEP_ALIVE_S
    try:
        return parse_keep_alive(body["keep_alive"])
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


@dataclass
class Installed:
    model: CatalogModel
    modified_at: datetime


@dataclass
class Running:
    name: str
    expires_at: datetime


class ApiError(Exception):
    """A non-2xx answer: {"error": message} as JSON, or plain text for the router's own 404/405."""

    def __init__(
        self, status: int, message: str, *, text: bool = False, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.text, self.headers = status, message, text, headers


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(
    status: int,
    body: bytes,
    content_type: str | None,
    *,
    head_only: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
    close: bool = False,
) -> bytes:
    headers = [("Content-Type", content_type)] if content_type else []
    headers += [*extra, ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    return _head(status, headers) + (b"" if head_only else body)


def _json(status: int, payload: Any, head_only: bool = False) -> bytes:
    return _response(status, _dumps(payload), "application/json; charset=utf-8", head_only=head_only)


def _body(req: Request, request_type: str, fields: dict[str, type]) -> dict[str, Any]:
    """The JSON body as Go's ShouldBindJSON sees it: missing, malformed or mistyped fields -> 400."""
    if not req.raw_body.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(req.raw_body)
    except ValueError:
        raise ApiError(400, "invalid character looking for beginning of value") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"json: cannot unmarshal {type(body).__name__} into Go value of type api.{request_type}")
    for name, kind in fields.items():
        value = body.get(name)
        if value is None or kind is object:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ApiError(
                400,
                f"json: cannot unmarshal {type(value).__name__} into Go struct "
                f"field {request_type}.{name} of type {kind.__name__}",
            )
    return body


class OllamaServer(PullMixin, LoopbackServer):
    """See the module docstring. State is guarded by one lock, so tests may poke it from their thread."""

    thread_name = "ollama-test-server"
    start_error = "the Ollama test server failed to start"
    bad_request = HttpError
    abort_exceptions = (ConnectionCut,)
    close_on_pipelining = False

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        catalog: Iterable[CatalogModel] = DEFAULT_CATALOG,
        installed: Iterable[str] = (),
        api_key: str | None = None,
        tick_s: float = 0.06,
        bytes_per_tick: int = 1 << 20,
        disk_free: int | None = None,
        version: str = VERSION,
        chat_upstream: str | None = None,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.chat_upstream = chat_upstream  # a llama-server base URL; None: the canned reply
        self.version = version
        self.tick_s = tick_s
        self.bytes_per_tick = bytes_per_tick
        self.disk_free = disk_free  # None: unlimited
        self.size_vram_fraction = 1.0  # share of a loaded model held in GPU memory
        self.load_s = 0.0  # how long a model not in memory takes to load (Ollama answers after that)
        self.tags_error: tuple[int, str] | None = None  # /api/tags answers this status and error
        self.registry_error: str | None = None  # a pull fails after "pulling manifest" with this
        self.digest_mismatch = False  # a pull's downloaded weights fail the sha256 check
        self.disk_full_rollback = False  # a full disk removes the blob's partial file (x/transfer)
        self._catalog: dict[str, CatalogModel] = {m.name: m for m in catalog}
        self._installed: dict[str, Installed] = {}
        self._blobs: dict[str, int] = {}  # digest -> bytes on disk (== size: complete)
        self._running: dict[str, Running] = {}
        self._downloads: dict[str, Download] = {}
        self._drops: list[int] = []  # per future pull: progress lines before the connection is cut
        self._upstream_requests: list[dict[str, Any]] = []
        self.pull_lines = 0  # progress lines written by all pulls so far
        for name in installed:
            self.install(name)

    # -- test-side controls ---------------------------------------------------------------
    @property
    def client_disconnects(self) -> int:
        """``disconnects``: clients that left mid-response."""
        return self.disconnects

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
            model = self._catalog.get(full) if full else None
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

    def layers_of(self, name: str) -> tuple[Layer, ...]:
        with self._lock:
            return self._catalog[short_name(name) or name].layers

    # -- connections: hooks of LoopbackServer ---------------------------------------------
    def _background_tasks(self) -> list[asyncio.Task[None]]:
        return [d.task for d in self._downloads.values() if d.task]

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        req = await read_request(reader, any_http1=True)
        if req is not None:
            req.raw_body = await read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        assert isinstance(exc, HttpError)
        return _response(exc.status, _UNREADABLE[exc.status].encode(), "text/plain", close=True)

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: _Exchange) -> bool:
        try:
            result = await self._route(req, writer, state)
        except ApiError as exc:
            if exc.text:
                data = _response(exc.status, exc.message.encode(), "text/plain", extra=exc.headers)
            else:
                data = _json(exc.status, {"error": exc.message})
            return await send(writer, data)
        if isinstance(result, bytes):
            return await send(writer, result)
        return result

    async def _route(self, req: Request, writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
        path = req.path.split("?", 1)[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            raise ApiError(404, "404 page not found", text=True)
        if req.method not in allowed:
            raise ApiError(405, "405 method not allowed", text=True, headers=(("Allow", ", ".join(allowed)),))
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
            if self.tags_error is not None:
                raise ApiError(*self.tags_error)
            return _json(200, {"models": self._tags()}, head)
        if path == "/api/ps":
            return _json(200, {"models": self._ps()})
        if path == "/api/show":
            return _json(200, self._show(_body(req, "ShowRequest", {"model": str, "name": str, "verbose": bool})))
        if path == "/api/delete":
            self._delete(_body(req, "DeleteRequest", {"model": str, "name": str}))
            return _response(200, b"", None)
        if path == "/api/copy":
            self._copy(_body(req, "CopyRequest", {"source": str, "destination": str}))
            return _response(200, b"", None)
        if path == "/api/generate":
            return await self._generate(
                _body(
                    req,
                    "GenerateRequest",
                    {
                        "model": str,
                        "prompt": str,
                        "system": str,
                        "stream": bool,
                        "keep_alive": object,
                        "options": dict,
                        "format": object,
                    },
                ),
                writer,
                state,
            )
        if path == "/api/chat":
            return await self._chat(
                _body(
                    req,
                    "ChatRequest",
                    {
                        "model": str,
                        "messages": list,
                        "stream": bool,
                        "keep_alive": object,
                        "options": dict,
                        "format": object,
                    },
                ),
                writer,
                state,
            )
        return await self._pull(
            _body(req, "PullRequest", {"model": str, "name": str, "stream": bool, "insecure": bool}), writer, state
        )

    # -- simple endpoints -----------------------------------------------------------------
    def _tags(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = sorted(self._installed.values(), key=lambda i: i.modified_at, reverse=True)
        return [
            {
                "name": i.model.name,
                "model": i.model.name,
                "modified_at": rfc3339(i.modified_at),
                "size": i.model.size,
                "digest": i.model.digest,
                "details": i.model.details,
                "capabilities": list(i.model.capabilities),
            }
            for i in entries
        ]

    def _ps(self) -> list[dict[str, Any]]:
        now = _now()
        with self._lock:
            for name in [n for n, r in self._running.items() if r.expires_at <= now]:
                del self._running[name]
            running = [(r, self._installed[r.name].model) for r in self._running.values() if r.name in self._installed]
        return [
            {
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": m.digest,
                "details": m.details,
                "expires_at": rfc3339(r.expires_at),
                "size_vram": int(m.size * self.size_vram_fraction),
                "context_length": min(4096, m.context_length),
            }
            for r, m in running
        ]

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
        modelfile = (
            f'# Modelfile generated by "ollama show"\n# To build a new Modelfile based on '
            f"this, replace FROM with:\n# FROM {model.name}\n\n"
            f"FROM {MODELS_DIR}/blobs/sha256-{model.layers[0].digest[7:]}\n"
            f'TEMPLATE """{model.template}"""\n'
        )
        if model.system:
            modelfile += f'SYSTEM """{model.system}"""\n'
        modelfile += "".join(f"PARAMETER {' '.join(line.split(None, 1))}\n" for line in model.parameters.splitlines())
        modelfile += f'LICENSE """{model.license}"""\n'
        reply: dict[str, Any] = {
            "license": model.license,
            "modelfile": modelfile,
            "parameters": model.parameters,
            "template": model.template,
            "details": model.details,
            "model_info": {
                "general.architecture": model.family,
                "general.parameter_count": 1_235_814_432,
                f"{model.family}.context_length": model.context_length,
                f"{model.family}.embedding_length": 2048,
            },
            "capabilities": list(model.capabilities),
            "modified_at": rfc3339(installed.modified_at),
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
                still_used = {used.digest for i in self._installed.values() for used in i.model.layers}
                for layer in found.model.layers:
                    if layer.digest not in still_used:
                        self._blobs.pop(layer.digest, None)
        if found is None:
            raise ApiError(404, f"model '{name}' not found")

    def _copy(self, body: dict[str, Any]) -> None:
        source, destination = body.get("source") or "", body.get("destination") or ""
        target = short_name(destination)
        if target is None:
            raise ApiError(400, f'destination "{destination}" is invalid')
        src = self._find(source, f'model "{source}" not found')
        with self._lock:
            self._installed[target] = Installed(replace(src.model, name=target), _now())

    async def _generate(self, body: dict[str, Any], writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
        arrived = time.monotonic_ns()
        name = body.get("model") or ""
        if not name:
            raise ApiError(400, "model is required")
        keep_alive = _keep_alive(body)
        installed = self._find(name, f"model '{name}' not found")
        if keep_alive != 0 or body.get("prompt"):  # an unload comes before the capability check
            self._require_completion(installed, name, "generate")
        if keep_alive != 0:
            await self._load(installed.model.name)
        self._mark_used(installed.model.name, keep_alive)
        if not body.get("prompt"):
            # Load / unload: one JSON object, even when a stream was asked for.
            return _json(
                200,
                {
                    "model": name,
                    "created_at": rfc3339(datetime.now(UTC)),
                    "response": "",
                    "done": True,
                    "done_reason": "unload" if keep_alive == 0 else "load",
                },
            )
        return await self._reply(
            "generate", name, body, body.get("system") or installed.model.system, arrived, writer, state
        )

    async def _chat(self, body: dict[str, Any], writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
        arrived = time.monotonic_ns()
        name = body.get("model") or ""
        if not name:
            raise ApiError(400, "model is required")
        try:
            ollama_chat.check_images(body.get("messages") or [])
        except ReplyError as exc:
            raise ApiError(exc.status, exc.message) from None
        installed = self._find(name, f"model '{name}' not found")
        keep_alive = _keep_alive(body)
        self._require_completion(installed, name, "chat")
        await self._load(installed.model.name)
        self._mark_used(installed.model.name, keep_alive)
        try:
            ollama_chat.check_sees(body.get("messages") or [], installed.model.capabilities)
        except ReplyError as exc:
            raise ApiError(exc.status, exc.message) from None
        return await self._reply("chat", name, body, installed.model.system, arrived, writer, state)

    @staticmethod
    def _require_completion(installed: Installed, name: str, what: str) -> None:
        """Ollama's scheduleRunner refuses an embedding model for chat and generate (Go's %q)."""
        if "completion" not in installed.model.capabilities:
            raise ApiError(400, f"{json.dumps(name)} does not support {what}")

    async def _load(self, name: str) -> None:
        """A model not in memory is loaded first: nothing is written until it is (as Ollama does)."""
        with self._lock:
            loaded = name in self._running
        if not loaded and self.load_s > 0:
            await asyncio.sleep(self.load_s)

    def _expiry(self, keep_alive: float) -> datetime:
        return FOREVER if keep_alive < 0 else _now() + timedelta(seconds=keep_alive)

    def _mark_used(self, name: str, keep_alive: float) -> None:
        with self._lock:
            if keep_alive == 0:
                self._running.pop(name, None)
            else:
                self._running[name] = Running(name, self._expiry(keep_alive))

    async def _reply(
        self,
        kind: str,
        name: str,
        body: dict[str, Any],
        system: str,
        arrived: int,
        writer: asyncio.StreamWriter,
        state: _Exchange,
    ) -> bytes | bool:
        """A chat or prompted generate: the canned words, or llama-server's when forwarding."""
        if self.chat_upstream is None:
            pieces = ollama_chat.canned_reply(think=body.get("think") not in (None, False))
        else:
            try:
                if kind == "chat":
                    messages = ollama_chat.chat_messages(body.get("messages") or [], system)
                else:
                    messages = ollama_chat.generate_messages(body["prompt"], system)
                request = ollama_chat.upstream_request(name, messages, body.get("options"), body.get("format"))
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
        created = rfc3339(datetime.now(UTC))
        return _json(200, ollama_chat.reply_line(kind, name, created, whole, finished))

    @staticmethod
    async def _streamed_reply(
        kind: str, name: str, pieces: AsyncIterator[Delta | Finished], writer: asyncio.StreamWriter, state: _Exchange
    ) -> bool:
        started = False
        try:
            async for piece in pieces:
                delta, finished = (Delta(""), piece) if isinstance(piece, Finished) else (piece, None)
                line = ollama_chat.reply_line(kind, name, rfc3339(datetime.now(UTC)), delta, finished)
                data = frame(_dumps(line) + b"\n")
                if not started:
                    started = state.in_flight = True
                    data = (
                        _head(200, [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]) + data
                    )
                writer.write(data)
                await writer.drain()
        except ReplyError as exc:
            if not started:
                raise
            # Ollama's streamResponse: once lines went out, the error is one more line.
            writer.write(frame(_dumps({"error": exc.message}) + b"\n"))
        return await end_chunked(writer, state)

    # -- pull -----------------------------------------------------------------------------
    async def _pull(self, body: dict[str, Any], writer: asyncio.StreamWriter, state: _Exchange) -> bytes | bool:
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
        writer.write(_head(200, [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]))
        pending: list[bytes] = []

        def send(line: dict[str, Any]) -> None:
            pending.append(_dumps(line) + b"\n")

        async def flush() -> None:
            if pending:
                writer.write(frame(b"".join(pending)))
                pending.clear()
                await writer.drain()

        await self._pull_lines(full, send, flush, drop_after=drop_after, writer=writer)
        await flush()
        return await end_chunked(writer, state)

    def _pulled(self, model: CatalogModel) -> None:
        with self._lock:
            self._installed[model.name] = Installed(model, _now())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback server speaking Ollama's /api/*")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tick-s", type=float, default=0.06, help="seconds between progress lines")
    parser.add_argument("--bytes-per-tick", type=int, default=1 << 20)
    parser.add_argument(
        "--model", action="append", default=[], metavar="NAME=BYTES", help="add a model of that size to the catalog"
    )
    parser.add_argument("--installed", action="append", default=[], metavar="NAME")
    parser.add_argument(
        "--chat-upstream", metavar="URL", help="a llama-server base URL to forward /api/chat and /api/generate to"
    )
    args = parser.parse_args(argv)
    server = OllamaServer(
        port=args.port, tick_s=args.tick_s, bytes_per_tick=args.bytes_per_tick, chat_upstream=args.chat_upstream
    )
    for spec in args.model:
        name, _, size = spec.partition("=")
        server.add_to_catalog(catalog_model(name, int(size)))
    for name in args.installed:
        server.install(name)
    run_main(server)


if __name__ == "__main__":
    main()
