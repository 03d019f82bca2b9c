"""A loopback twin of the Hugging Face Hub, written from the Hub's documented HTTP API.

What ModelDesk (and `huggingface_hub`, given `HF_ENDPOINT`) asks of it:

* `GET /api/models?search=&filter=gguf&sort=downloads|likes|lastModified&direction=-1&limit=N`
  with `expand[]=` fields: the matching repos, sorted, each {"id", "_id", "modelId", and the
  expanded fields}.
* `GET /api/models/{owner}/{name}` (and `/revision/{rev}`): the repo's details: sha, gated,
  private, tags (with "license:..."), cardData.license, siblings, downloads, likes, lastModified.
* `GET /api/models/{owner}/{name}/tree/{rev}?recursive=true`: [{"type": "file", "oid", "size",
  "path", "lfs": {"oid": <sha256>, "size", "pointerSize"}}], `page_size` entries a page, the next
  page in a `Link: <...>; rel="next"` header (cursor-based, as the Hub does).
* `GET /api/whoami-v2`: who a token belongs to (401 for one no repo grants).
* `GET|HEAD /{owner}/{name}/resolve/{rev}/{path}`: a 302 to `/cdn/<sha256>` with `X-Repo-Commit`,
  `X-Linked-Etag`, `X-Linked-Size` and `ETag`; the CDN path honours `Range` (206 with
  `Content-Range`, 416 past the end). Refusals as the Hub words them: 401 `X-Error-Code:
  RepoNotFound` for a repo that is not there (or private without a token), 401 `GatedRepo`
  without a token and 403 `GatedRepo` with a token not granted access, 404 `EntryNotFound`.

Faults (set from any thread): `corrupt` (paths served with one byte flipped, so their sha256 is
wrong), `cut_after` (bytes of the next file body sent before the connection is reset, once).
Reading back: `requests` (each with its headers, so a test sees `Range` and `Authorization`),
`body_bytes` (file bytes sent, every attempt).

As a subprocess: ``python -m tests.servers.hf_hub --file owner/name:path=/local/file [--cut-after N]``
prints ``PORT=<n>`` and serves until SIGTERM. Only the standard library is imported.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.servers._http import Exchange, HttpError, LoopbackServer, Request, read_body, read_request, run_main

_REASONS = {
    200: "OK",
    206: "Partial Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
}
SEND_CHUNK = 1024 * 1024


class ConnectionCut(Exception):
    """Raised mid-body to reset the connection (the `cut_after` fault)."""


@dataclass
class TwinFile:
    path: str
    source: Path
    size: int
    sha256: str


@dataclass
class TwinRepo:
    id: str
    files: dict[str, TwinFile] = field(default_factory=dict)
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool | str = False
    private: bool = False
    license: str = "apache-2.0"
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-01-01T00:00:00.000Z"
    granted: set[str] = field(default_factory=set)  # tokens that may read a gated or private repo

    def add(self, path: str, source: Path, sha256: str | None = None) -> TwinFile:
        source = Path(source)
        digest = sha256 or _sha256(source)
        self.files[path] = TwinFile(path, source, source.stat().st_size, digest)
        return self.files[path]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    all_headers = {"content-length": str(len(body)), **(headers or {})}
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
    return _answer(status, json.dumps(payload).encode(), {"content-type": "application/json", **(headers or {})})


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HfHubTwin(LoopbackServer):
    """The Hub's API over loopback; add repos with `repo(...)` and files with `TwinRepo.add`."""

    thread_name = "hf-hub-twin"
    start_error = "the Hugging Face Hub twin failed to start"
    bad_request = HttpError
    abort_exceptions = (ConnectionCut,)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, page_size: int = 50) -> None:
        super().__init__(host, port)
        self.repos: dict[str, TwinRepo] = {}
        self.page_size = page_size
        self.corrupt: set[str] = set()
        self.cut_after: int | None = None
        self.body_bytes = 0

    def repo(self, repo_id: str, **fields: Any) -> TwinRepo:
        with self._lock:
            self.repos[repo_id] = TwinRepo(repo_id, **fields)
            return self.repos[repo_id]

    # -- hooks of LoopbackServer -----------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            req.raw_body = await read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        status = exc.status if isinstance(exc, HttpError) else 400
        return _answer(status, str(exc).encode(), {"connection": "close"})

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        if req.method not in ("GET", "HEAD"):
            writer.write(_answer(405, b"", {"allow": "GET, HEAD"}))
            await writer.drain()
            return True
        url = urlsplit(req.path)
        path, query = unquote(url.path), parse_qs(url.query)
        try:
            if path.startswith("/cdn/"):
                return await self._cdn(req, path.removeprefix("/cdn/"), writer, state)
            if path == "/api/whoami-v2":
                answer = self._whoami(req)
            elif path == "/api/models":
                answer = self._search(query)
            elif path.startswith("/api/models/"):
                answer = self._model_api(req, path.removeprefix("/api/models/"), query)
            elif "/resolve/" in path:
                answer = self._resolve(req, path)
            else:
                raise HubError(404, "", "Not Found")
        except HubError as exc:
            answer = _json(
                exc.status,
                {"error": exc.message},
                {"x-error-code": exc.code, "x-error-message": exc.message} if exc.code else None,
            )
        writer.write(answer if req.method == "GET" else answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
        await writer.drain()
        return True

    # -- the API ----------------------------------------------------------------------------
    def _whoami(self, req: Request) -> bytes:
        token = req.headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            known = any(token in repo.granted for repo in self.repos.values())
        if not known:
            return _json(401, {"error": "Invalid credentials in Authorization header"})
        return _json(200, {"type": "user", "name": "tester", "auth": {"type": "access_token"}})

    def _search(self, query: dict[str, list[str]]) -> bytes:
        words = query.get("search", [""])[0].lower()
        sort = query.get("sort", ["downloads"])[0]
        limit = int(query.get("limit", ["1000"])[0])
        expand = query.get("expand[]", [])
        if sort not in ("downloads", "likes", "lastModified", "createdAt", "trendingScore"):
            raise HubError(400, "", f"Invalid sort parameter: {sort}")
        with self._lock:
            hits = [r for r in self.repos.values() if not r.private and words in r.id.lower()]
        if "gguf" in query.get("filter", []):
            hits = [r for r in hits if any(p.endswith(".gguf") for p in r.files)]
        key = {"downloads": lambda r: r.downloads, "likes": lambda r: r.likes}.get(sort, lambda r: r.last_modified)
        hits.sort(key=key, reverse=query.get("direction", ["-1"])[0] == "-1")
        results = []
        for repo in hits[:limit]:
            full = self._details(repo)
            entry = {"_id": full["_id"], "id": repo.id, "modelId": repo.id}
            entry.update(
                {name: full[name] for name in expand if name in full}
                if expand
                else {name: full[name] for name in ("likes", "downloads", "tags", "private", "createdAt")}
            )
            results.append(entry)
        return _json(200, results)

    def _details(self, repo: TwinRepo) -> dict[str, Any]:
        return {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0],
            "sha": repo.sha,
            "lastModified": repo.last_modified,
            "createdAt": repo.last_modified,
            "private": repo.private,
            "disabled": False,
            "gated": repo.gated,
            "downloads": repo.downloads,
            "likes": repo.likes,
            "library_name": "gguf",
            "tags": ["gguf", f"license:{repo.license}"],
            "cardData": {"license": repo.license},
            "siblings": [{"rfilename": path} for path in sorted(repo.files)],
        }

    def _find(self, req: Request, repo_id: str, *, content: bool) -> TwinRepo:
        token = req.headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            repo = self.repos.get(repo_id)
        if repo is None or (repo.private and token not in repo.granted):
            raise HubError(401, "RepoNotFound", f"Repository Not Found for url: {repo_id}.")
        if content and repo.gated and token not in repo.granted:
            if not token:
                raise HubError(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access "
                    "to it and be authenticated to access it. Please log in.",
                )
            raise HubError(
                403,
                "GatedRepo",
                f"Access to model {repo_id} is restricted and you are not in the "
                f"authorized list. Visit https://huggingface.co/{repo_id} to ask for access.",
            )
        return repo

    def _model_api(self, req: Request, rest: str, query: dict[str, list[str]]) -> bytes:
        parts = rest.split("/")
        repo = self._find(req, "/".join(parts[:2]), content=False)
        tail = parts[2:]
        if not tail or (len(tail) == 2 and tail[0] == "revision" and tail[1] in ("main", repo.sha)):
            return _json(200, self._details(repo))
        if len(tail) >= 2 and tail[0] == "tree" and tail[1] in ("main", repo.sha):
            entries = [
                {
                    "type": "file",
                    "oid": hashlib.sha1(f.sha256.encode()).hexdigest(),
                    "size": f.size,
                    "path": f.path,
                    "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134},
                }
                for f in sorted(repo.files.values(), key=lambda f: f.path)
            ]
            start = int(query.get("cursor", ["0"])[0])
            page = entries[start : start + self.page_size]
            headers = {}
            if start + self.page_size < len(entries):
                headers["link"] = (
                    f'<{self.base_url}/api/models/{repo.id}/tree/{tail[1]}?recursive=true&cursor={start + self.page_size}>; rel="next"'
                )
            return _json(200, page, headers)
        raise HubError(404, "RevisionNotFound", f"Invalid rev id: {'/'.join(tail)}")

    def _resolve(self, req: Request, path: str) -> bytes:
        repo_id, _, rest = path.lstrip("/").partition("/resolve/")
        revision, _, file_path = rest.partition("/")
        repo = self._find(req, repo_id, content=True)
        if revision not in ("main", repo.sha):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        file = repo.files.get(file_path)
        if file is None:
            raise HubError(404, "EntryNotFound", f'{file_path} does not exist on "{revision}"')
        location = f"/cdn/{file.sha256}?repo={quote(repo_id)}&path={quote(file_path)}"
        return _answer(
            302,
            b"",
            {
                "location": location,
                "x-repo-commit": repo.sha,
                "x-linked-etag": f'"{file.sha256}"',
                "x-linked-size": str(file.size),
                "etag": f'"{hashlib.sha1(file.sha256.encode()).hexdigest()}"',
            },
        )

    async def _cdn(self, req: Request, target: str, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        sha = target.partition("?")[0]
        with self._lock:
            file = next((f for r in self.repos.values() for f in r.files.values() if f.sha256 == sha), None)
        if file is None:
            writer.write(_answer(404, b"NoSuchKey"))
            await writer.drain()
            return True
        start, end = 0, file.size - 1
        status = 200
        if (spec := req.headers.get("range", "")).startswith("bytes="):
            first, _, last = spec.removeprefix("bytes=").partition("-")
            start = int(first) if first else max(0, file.size - int(last))
            end = min(int(last), file.size - 1) if last and first else file.size - 1
            if start >= file.size:
                writer.write(_answer(416, b"", {"content-range": f"bytes */{file.size}"}))
                await writer.drain()
                return True
            status = 206
        length = end - start + 1
        headers = {"content-type": "application/octet-stream", "accept-ranges": "bytes", "etag": f'"{sha}"'}
        if status == 206:
            headers["content-range"] = f"bytes {start}-{end}/{file.size}"
        headers["content-length"] = str(length)
        writer.write(_answer(status, b"", headers))
        if req.method == "HEAD":
            await writer.drain()
            return True
        state.in_flight = True
        await self._send_body(file, start, length, writer)
        state.in_flight = False
        return True

    async def _send_body(self, file: TwinFile, start: int, length: int, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            cut, self.cut_after = self.cut_after, None
            corrupt = file.path in self.corrupt
        to_send = length if cut is None else min(length, cut)
        loop = asyncio.get_running_loop()
        with open(file.source, "rb") as source:  # noqa: ASYNC230 - a test server; sendfile needs the file
            if not corrupt:
                await writer.drain()
                sent = await loop.sendfile(writer.transport, source, start, to_send)
            else:
                source.seek(start)
                sent = 0
                while sent < to_send:
                    chunk = bytearray(source.read(min(SEND_CHUNK, to_send - sent)))
                    if start + sent <= file.size // 2 < start + sent + len(chunk):
                        chunk[file.size // 2 - start - sent] ^= 0xFF  # one byte in the middle
                    writer.write(bytes(chunk))
                    await writer.drain()
                    sent += len(chunk)
        with self._lock:
            self.body_bytes += sent
        if cut is not None and cut < length:
            raise ConnectionCut()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback twin of the Hugging Face Hub API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file", action="append", default=[], metavar="OWNER/NAME:PATH=LOCAL[#SHA256]")
    parser.add_argument("--cut-after", type=int, default=None, help="reset the first body after this many bytes")
    args = parser.parse_args(argv)
    server = HfHubTwin(port=args.port)
    for spec in args.file:
        repo_and_path, _, local = spec.partition("=")
        repo_id, _, path = repo_and_path.partition(":")
        local, _, sha = local.partition("#")
        repo = server.repos.get(repo_id) or server.repo(repo_id)
        repo.add(path, Path(local), sha or None)
    server.cut_after = args.cut_after
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_main(server)


if __name__ == "__main__":
    main()
