"""The registry side of the loopback Ollama server: the models it offers, and `/api/pull`.

What `tests.servers.ollama_server` needs to name, list and fetch models (ollama/ollama
types/model/name.go, server/download.go, server/images.go):

* `short_name`: a model name as Ollama shows it, [host/][namespace/]model:tag (tag "latest" when
  none is given; the default host registry.ollama.ai and namespace library left out).
* `CatalogModel`: a model the fake registry offers, made of `Layer`s (blobs with made-up sha256
  digests; the weights take what the small layers leave of its size). `DEFAULT_CATALOG` is what
  the server offers unless told otherwise.
* `PullMixin` gives `OllamaServer` the pull without its HTTP framing: `_pull_lines` sends the
  ndjson lines of one pull ("pulling manifest", per layer a line for the bytes already on the fake
  disk and one per progress tick, "verifying sha256 digest", "writing manifest", "success"; or an
  {"error": ...} line for an unknown model or a full disk). Each blob has one download, paced by
  `tick_s` and `bytes_per_tick` and capped by `disk_free`; every pull of it reads the progress
  from a queue of its own, and when the last of them leaves the download stops with its bytes
  kept, so the next pull resumes from them. `drop_pulls` arms the cut: after that many progress
  lines half a chunk goes out and `ConnectionCut` makes the server reset the connection.
  `registry_error` (an error line right after "pulling manifest", as when Ollama cannot reach its
  registry), `digest_mismatch` (the weights fail "verifying sha256 digest" and are deleted, as
  server/images.go does) and `disk_full_rollback` (a full disk also removes the blob's partial
  file, as x/transfer/download.go does for blobs under 64 MB) are the registry's faults.

The server owns the state the mixin works on (see `PullMixin`'s annotations) and records a
finished pull through the `_pulled` hook. Only the standard library is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODELS_DIR = "/usr/share/ollama/.ollama/models"  # where the "disk full" error line says it wrote
MAX_CATCH_UP = 200  # progress ticks written in one go when the loop woke up late

_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"
_NAME = re.compile(
    rf"^(?:(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]{{0,349}}(?::\d{{1,5}})?)/)??"
    rf"(?:(?P<namespace>{_PART})/)?(?P<model>{_PART})(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,79}}))?$"
)


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
            Layer(
                _sha(f"{self.name}/template"), len(self.template.encode()) or 1, "application/vnd.ollama.image.template"
            ),
            Layer(
                _sha(f"{self.name}/license"), len(self.license.encode()) or 1, "application/vnd.ollama.image.license"
            ),
            Layer(
                _sha(f"{self.name}/params"), len(self.parameters.encode()) or 1, "application/vnd.ollama.image.params"
            ),
        ]
        if self.system:
            small.append(
                Layer(_sha(f"{self.name}/system"), len(self.system.encode()), "application/vnd.ollama.image.system")
            )
        weights = max(1, self.size - sum(layer.size for layer in small))
        return (Layer(_sha(f"{self.name}/model"), weights, "application/vnd.ollama.image.model"), *small)

    @property
    def digest(self) -> str:
        return _sha(f"{self.name}/manifest")[7:]

    @property
    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }


def catalog_model(name: str, size: int, **details: Any) -> CatalogModel:
    full = short_name(name)
    if full is None:
        raise ValueError(f"invalid model name {name!r}")
    return CatalogModel(name=full, size=size, **details)


DEFAULT_CATALOG: tuple[CatalogModel, ...] = (
    catalog_model("llama3.2:1b", 1_321_098_329, parameter_size="1.2B"),
    catalog_model("llama3.2:latest", 2_019_393_189, parameter_size="3.2B"),
    catalog_model("qwen2.5:0.5b", 397_821_319, family="qwen2", parameter_size="494.03M", context_length=32768),
    catalog_model(
        "gemma3:270m",
        291_554_930,
        family="gemma3",
        parameter_size="268.10M",
        quantization="Q8_0",
        context_length=32768,
        capabilities=("completion",),
        system="You are a helpful assistant.",
    ),
    catalog_model(
        "gemma3:4b",
        3_338_801_804,
        family="gemma3",
        parameter_size="4.3B",
        context_length=131072,
        capabilities=("completion", "vision"),
    ),
    catalog_model("mistral:latest", 4_113_301_824, parameter_size="7.2B", context_length=32768),
    catalog_model(
        "nomic-embed-text:latest",
        274_302_450,
        family="nomic-bert",
        parameter_size="137M",
        quantization="F16",
        context_length=2048,
        capabilities=("embedding",),
    ),
    catalog_model("tiny:latest", 3_000_000, parameter_size="15M", context_length=2048),
)


class ConnectionCut(Exception):
    """The drop switch fired: the connection is closed without finishing the response."""


@dataclass
class Download:
    """One blob being fetched; every pull that needs it reads progress from its own queue."""

    layer: Layer
    waiters: list[asyncio.Queue[int | str | None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class PullMixin:
    """`OllamaServer`'s pulls: progress lines, shared downloads, the drop switch."""

    # Made by OllamaServer.__init__; `_lock` guards them (the switches may be set from any thread).
    _lock: threading.Condition
    _catalog: dict[str, CatalogModel]
    _blobs: dict[str, int]  # digest -> bytes on disk (== size: complete)
    _downloads: dict[str, Download]
    _drops: list[int]  # per future pull: progress lines before the connection is cut
    tick_s: float
    bytes_per_tick: int
    disk_free: int | None
    pull_lines: int
    registry_error: str | None
    digest_mismatch: bool
    disk_full_rollback: bool

    def blob_bytes(self, digest: str) -> int:
        with self._lock:
            return self._blobs.get(digest, 0)

    def drop_pulls(self, after_lines: int = 5, times: int = 1) -> None:
        """Cut the connection of the next `times` pulls after `after_lines` download progress lines."""
        with self._lock:
            self._drops.extend([after_lines] * times)

    def _pulled(self, model: CatalogModel) -> None:
        """Hook: the pull wrote `model`'s manifest; record it as installed."""
        raise NotImplementedError

    async def _pull_lines(
        self,
        name: str,
        send: Callable[[dict[str, Any]], None],
        flush: Callable[[], Any] | None,
        *,
        drop_after: int | None = None,
        writer: asyncio.StreamWriter | None = None,
    ) -> None:
        """Send the lines of one pull of `name` (a short name); `flush` (if any) after each step."""

        async def out() -> None:
            if flush is not None:
                await flush()

        send({"status": "pulling manifest"})
        await out()
        with self._lock:
            model = self._catalog.get(name)
            registry_error = self.registry_error
        if registry_error is not None:
            send({"error": registry_error})
            return
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
                                writer.write(b'40\r\n{"status":"pulling')  # half a chunk, then gone
                                await writer.drain()
                            raise ConnectionCut
                    await out()
                    if finished:
                        break
            finally:
                self._leave_download(layer, queue)
        send({"status": "verifying sha256 digest"})
        await out()
        await asyncio.sleep(min(self.tick_s, 0.05))
        if self.digest_mismatch:
            weights = model.layers[0]
            with self._lock:
                self._blobs.pop(weights.digest, None)
            send(
                {
                    "error": f"digest mismatch, file must be downloaded again: want {weights.digest}, "
                    f"got {_sha('damaged')}"
                }
            )
            return
        send({"status": "writing manifest"})
        self._pulled(model)
        send({"status": "success"})

    def _join_download(self, layer: Layer) -> asyncio.Queue[int | str | None]:
        queue: asyncio.Queue[int | str | None] = asyncio.Queue()
        download = self._downloads.get(layer.digest)
        if download is None or download.task is None or download.task.done():
            download = Download(layer)
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

    async def _download(self, download: Download) -> None:
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
                        if self.disk_full_rollback:  # the partial file goes, and its bytes with it
                            self.disk_free = self._blobs.pop(layer.digest)
                    else:
                        full = False
                        self._blobs[layer.digest] = done + step
                        if self.disk_free is not None:
                            self.disk_free -= step
                    done = self._blobs.get(layer.digest, 0)
                if full:
                    publish(f"write {MODELS_DIR}/blobs/sha256-{layer.digest[7:]}-partial: no space left on device")
                    return
                publish(done)
                if done >= layer.size:
                    publish(None)
                    return
