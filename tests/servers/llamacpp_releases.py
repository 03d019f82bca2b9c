"""A loopback twin of GitHub's release API for ggml-org/llama.cpp, and of its asset downloads.

Written from GitHub's REST API documentation, "REST API endpoints for releases" and "...for
release assets" (https://docs.github.com/en/rest/releases/releases, API version 2022-11-28):

* `GET /repos/{owner}/{repo}/releases/latest`: "the most recent non-prerelease, non-draft
  release", one release object.
* `GET /repos/{owner}/{repo}/releases?per_page=N&page=P`: release objects, newest first.
* A release object: `url`, `html_url`, `assets_url`, `id`, `node_id`, `tag_name`,
  `target_commitish`, `name`, `draft`, `prerelease`, `created_at`, `published_at`, `tarball_url`,
  `zipball_url`, `body` and `assets`: each {`url`, `browser_download_url`, `id`, `node_id`, `name`,
  `label`, `state`: "uploaded", `content_type`, `size`, `digest`: "sha256:<hex>",
  `download_count`, `created_at`, `updated_at`}.
* `tarball_url` answers 302 to the archive of the tag's source (codeload), one top folder.
* `browser_download_url` (`/{owner}/{repo}/releases/download/{tag}/{name}`) answers 302 to the
  storage host, which serves the bytes and honours `Range` (206 with `Content-Range`).

The assets are named as llama.cpp's release workflow (.github/workflows/release.yml) names them:
`llama-<tag>-bin-<os>[-<backend>]-<arch>.tar.gz` (`.zip` on Windows), unpacking to `llama-<tag>/`.

Faults (set from any thread): `wrong_digest` (asset names whose published digest is wrong),
`cut_after` (bytes of the next asset body sent before the connection is reset, once),
`stall_after` (bytes of the next asset body sent before it waits until `release_stall()`).
Reading back: `requests` (with headers, so a test sees `Range`), `body_bytes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers._http import Exchange, HttpError, LoopbackServer, Request, read_body, read_request

REPO = "ggml-org/llama.cpp"
_REASONS = {
    200: "OK",
    206: "Partial Content",
    302: "Found",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
}


class ConnectionCut(Exception):
    """Raised mid-body to reset the connection (the `cut_after` fault)."""


@dataclass
class TwinAsset:
    name: str
    source: Path
    size: int
    sha256: str
    id: int
    content_type: str = "application/octet-stream"


@dataclass
class TwinRelease:
    tag: str
    id: int
    assets: list[TwinAsset] = field(default_factory=list)
    prerelease: bool = False
    published_at: str = "2025-06-01T00:00:00Z"
    source: Path | None = None  # what tarball_url serves (GitHub's archive of the tag)


def _answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in {"content-length": str(len(body)), **(headers or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: int, payload: Any) -> bytes:
    return _answer(status, json.dumps(payload).encode(), {"content-type": "application/json; charset=utf-8"})


class LlamaCppReleasesTwin(LoopbackServer):
    """Add releases with `release(tag)` and their assets with `add(release, name, file)`."""

    thread_name = "llamacpp-releases-twin"
    start_error = "the llama.cpp releases twin failed to start"
    bad_request = HttpError
    abort_exceptions = (ConnectionCut,)

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.releases: list[TwinRelease] = []
        self.wrong_digest: set[str] = set()
        self.cut_after: int | None = None
        self.stall_after: int | None = None
        self._unstall = threading.Event()
        self.body_bytes = 0
        self._ids = 1000

    def release_stall(self) -> None:
        self._unstall.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._unstall.set()  # a stalled body must not hold the server's thread
        super().stop(timeout)

    @property
    def api_url(self) -> str:
        """What MODELDESK_LLAMACPP_RELEASES_URL points at."""
        return f"{self.base_url}/repos/{REPO}/releases"

    def release(self, tag: str, **fields: Any) -> TwinRelease:
        with self._lock:
            self._ids += 1
            release = TwinRelease(tag, self._ids, **fields)
            self.releases.append(release)
            return release

    def add(self, release: TwinRelease, name: str, source: Path) -> TwinAsset:
        digest = hashlib.sha256()
        with source.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        with self._lock:
            self._ids += 1
            content_type = "application/zip" if name.endswith(".zip") else "application/gzip"
            asset = TwinAsset(name, source, source.stat().st_size, digest.hexdigest(), self._ids, content_type)
            release.assets.append(asset)
            return asset

    # -- the JSON -------------------------------------------------------------------------
    def _asset_json(self, release: TwinRelease, asset: TwinAsset) -> dict[str, Any]:
        sha = (
            hashlib.sha256(b"not " + asset.sha256.encode()).hexdigest()
            if asset.name in self.wrong_digest
            else asset.sha256
        )
        return {
            "url": f"{self.base_url}/repos/{REPO}/releases/assets/{asset.id}",
            "browser_download_url": f"{self.base_url}/{REPO}/releases/download/{release.tag}/{asset.name}",
            "id": asset.id,
            "node_id": f"RA_{asset.id}",
            "name": asset.name,
            "label": "",
            "state": "uploaded",
            "content_type": asset.content_type,
            "size": asset.size,
            "digest": f"sha256:{sha}",
            "download_count": 0,
            "created_at": release.published_at,
            "updated_at": release.published_at,
        }

    def _release_json(self, release: TwinRelease) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{REPO}/releases/{release.id}"
        return {
            "url": api,
            "html_url": f"{self.base_url}/{REPO}/releases/tag/{release.tag}",
            "assets_url": f"{api}/assets",
            "id": release.id,
            "node_id": f"RE_{release.id}",
            "tag_name": release.tag,
            "target_commitish": "master",
            "name": release.tag,
            "body": "",
            "draft": False,
            "prerelease": release.prerelease,
            "created_at": release.published_at,
            "published_at": release.published_at,
            "tarball_url": f"{self.base_url}/repos/{REPO}/tarball/{release.tag}",
            "zipball_url": f"{self.base_url}/repos/{REPO}/zipball/{release.tag}",
            "assets": [self._asset_json(release, asset) for asset in release.assets],
        }

    # -- hooks of LoopbackServer -----------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            req.raw_body = await read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        return _answer(exc.status if isinstance(exc, HttpError) else 400, str(exc).encode(), {"connection": "close"})

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        if req.method not in ("GET", "HEAD"):
            writer.write(_answer(405, b"", {"allow": "GET, HEAD"}))
            await writer.drain()
            return True
        url = urlsplit(req.path)
        path, query = unquote(url.path), parse_qs(url.query)
        with self._lock:
            newest_first = sorted(self.releases, key=lambda r: r.id, reverse=True)
            assets = {f"/{REPO}/releases/download/{r.tag}/{a.name}": a for r in self.releases for a in r.assets}
            by_id = {f"/objects/{a.id}": a for r in self.releases for a in r.assets}
        if path == f"/repos/{REPO}/releases/latest":
            latest = next((r for r in newest_first if not r.prerelease), None)
            answer = _json(200, self._release_json(latest)) if latest else _json(404, {"message": "Not Found"})
        elif path == f"/repos/{REPO}/releases":
            per_page = int(query.get("per_page", ["30"])[0])
            page = int(query.get("page", ["1"])[0])
            chosen = newest_first[(page - 1) * per_page : page * per_page]
            answer = _json(200, [self._release_json(r) for r in chosen])
        elif path.startswith(f"/repos/{REPO}/tarball/"):
            tag = path.rsplit("/", 1)[1]
            answer = _answer(302, b"", {"location": f"{self.base_url}/codeload/{tag}"})
        elif path.startswith("/codeload/"):
            tag = path.rsplit("/", 1)[1]
            release = next((r for r in newest_first if r.tag == tag and r.source is not None), None)
            if release is None or release.source is None:
                answer = _json(404, {"message": "Not Found"})
            else:
                body = release.source.read_bytes()
                answer = _answer(200, body, {"content-type": "application/x-gzip"})
        elif path in assets:
            answer = _answer(302, b"", {"location": f"{self.base_url}/objects/{assets[path].id}"})
        elif path in by_id:
            return await self._object(req, by_id[path], writer, state)
        else:
            answer = _json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        writer.write(answer if req.method == "GET" else answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
        await writer.drain()
        return True

    async def _object(self, req: Request, asset: TwinAsset, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        start, status = 0, 200
        if (spec := req.headers.get("range", "")).startswith("bytes="):
            first = spec.removeprefix("bytes=").partition("-")[0]
            start = int(first or 0)
            if start >= asset.size:
                writer.write(_answer(416, b"", {"content-range": f"bytes */{asset.size}"}))
                await writer.drain()
                return True
            status = 206
        length = asset.size - start
        headers = {"content-type": "application/octet-stream", "accept-ranges": "bytes", "content-length": str(length)}
        if status == 206:
            headers["content-range"] = f"bytes {start}-{asset.size - 1}/{asset.size}"
        writer.write(_answer(status, b"", headers))
        if req.method == "HEAD":
            await writer.drain()
            return True
        with self._lock:
            cut, self.cut_after = self.cut_after, None
            stall, self.stall_after = self.stall_after, None
        to_send = length if cut is None else min(length, cut)
        state.in_flight = True
        loop = asyncio.get_running_loop()
        with open(asset.source, "rb") as source:  # noqa: ASYNC230 - a test server; sendfile needs the file
            await writer.drain()
            sent = 0
            if stall is not None and stall < to_send:
                sent = await loop.sendfile(writer.transport, source, start, stall)
                await writer.drain()
                await loop.run_in_executor(None, self._unstall.wait)
            sent += await loop.sendfile(writer.transport, source, start + sent, to_send - sent)
        state.in_flight = False
        with self._lock:
            self.body_bytes += sent
        if cut is not None and cut < length:
            raise ConnectionCut()
        return True
