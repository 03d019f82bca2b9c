"""What is already on this machine on first run: local model servers, GGUF folders, provider keys.

Every probe is short and independent: each server gets one GET with a one-second budget, both run
at once, and the folder count runs on a worker thread, so the whole look-around takes about a
second even when nothing answers. Nothing is changed: the welcome screen turns what was found into
accounts only when the user says so. Keys found in the environment are carried as `EnvKey`s and
left out of `Discovery`'s repr, so a log line or traceback that prints one shows no secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from desktop_app.domain.ollama import normalize_host_url
from desktop_app.domain.text import without_bidi_controls
from desktop_app.services.accounts.accounts import EnvKey, find_env_keys
from desktop_app.services.http_client import http_client
from desktop_app.services.local.gguf import default_folders

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.0
LLAMA_SERVER_URL = "http://127.0.0.1:8080"
# How deep a GGUF folder is looked into: the Hugging Face hub keeps files at
# models--org--name/snapshots/<revision>/file.gguf, LM Studio at publisher/model/file.gguf.
GGUF_MAX_DEPTH = 4
GGUF_MAX_ENTRIES = 20_000  # per folder: a huge tree is counted in part, never walked for long


@dataclass(frozen=True, slots=True)
class FoundServer:
    """A model server that answered. `url` is its root ("http://127.0.0.1:11434")."""

    url: str
    version: str = ""

    @property
    def address(self) -> str:
        return self.url.split("://", 1)[-1]


@dataclass(frozen=True, slots=True)
class GgufFolder:
    path: Path
    count: int
    partial: bool = False  # the folder was too big to count to the end


@dataclass(frozen=True, slots=True)
class Discovery:
    ollama: FoundServer | None = None
    llama_server: FoundServer | None = None
    gguf_folders: tuple[GgufFolder, ...] = ()
    env_keys: tuple[EnvKey, ...] = field(default=(), repr=False)

    @property
    def gguf_count(self) -> int:
        return sum(folder.count for folder in self.gguf_folders)

    @property
    def anything(self) -> bool:
        return bool(self.ollama or self.llama_server or self.gguf_folders or self.env_keys)


def ollama_url(environ: Mapping[str, str] | None = None) -> str:
    """Where Ollama listens: OLLAMA_HOST as Ollama itself reads it, else 127.0.0.1:11434.

    A server bound to every interface ("0.0.0.0") is reached on the loopback address.
    """
    env = os.environ if environ is None else environ
    url = normalize_host_url(env.get("OLLAMA_HOST", ""))
    return url.replace("://0.0.0.0", "://127.0.0.1").replace("://[::]", "://[::1]")


def llama_server_url(environ: Mapping[str, str] | None = None) -> str:
    """llama-server's default address, or the one its LLAMA_ARG_HOST/LLAMA_ARG_PORT select."""
    env = os.environ if environ is None else environ
    host = env.get("LLAMA_ARG_HOST", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = env.get("LLAMA_ARG_PORT", "").strip()
    if not port.isdigit():
        return LLAMA_SERVER_URL
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(port)}"


async def probe_ollama(http: httpx.AsyncClient, url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> FoundServer | None:
    """GET /api/version; an Ollama server answers {"version": "0.6.2"}."""
    body = await _get_json(http, f"{url}/api/version", timeout_s)
    if isinstance(body, dict) and isinstance(body.get("version"), str):
        return FoundServer(url, without_bidi_controls(body["version"]))
    return None


async def probe_llama_server(
    http: httpx.AsyncClient, url: str, *, timeout_s: float = PROBE_TIMEOUT_S
) -> FoundServer | None:
    """GET /health; llama-server answers {"status": "ok"} (or 503 {"status": ...} while loading)."""
    body = await _get_json(http, f"{url}/health", timeout_s, also_ok=(503,))
    if isinstance(body, dict) and ("status" in body or "error" in body):
        return FoundServer(url)
    return None


async def _get_json(http: httpx.AsyncClient, url: str, timeout_s: float, also_ok: tuple[int, ...] = ()) -> object:
    try:
        # wait_for bounds the whole exchange (connect + a server that trickles its answer).
        response = await asyncio.wait_for(http.get(url, timeout=timeout_s), timeout_s * 1.5)
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        log.debug("nothing at %s (%s)", url, type(exc).__name__)
        return None
    if response.status_code != 200 and response.status_code not in also_ok:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def count_gguf(folder: Path, *, max_depth: int = GGUF_MAX_DEPTH, max_entries: int = GGUF_MAX_ENTRIES) -> GgufFolder:
    """Count *.gguf files at most `max_depth` folders down; links to folders are not followed.

    A link to a file counts (the Hugging Face hub's snapshots are links into its blob store,
    which holds the same files under their hashes and is therefore not counted).
    """
    count = 0
    seen = 0
    pending: list[tuple[Path, int]] = [(folder, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > max_entries:
                    return GgufFolder(folder, count, partial=True)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < max_depth and entry.name != "blobs" and not entry.name.startswith("."):
                            pending.append((Path(entry.path), depth + 1))
                    elif entry.name.lower().endswith(".gguf") and entry.is_file():
                        count += 1
                except OSError:
                    continue
    return GgufFolder(folder, count)


def find_gguf_folders(folders: list[Path]) -> tuple[GgufFolder, ...]:
    """The folders that hold at least one GGUF file, with their counts. Blocking: use a thread."""
    found = []
    for folder in folders:
        if folder.is_dir():
            result = count_gguf(folder)
            if result.count:
                found.append(result)
    return tuple(found)


async def discover(
    *,
    http: httpx.AsyncClient | None = None,
    environ: Mapping[str, str] | None = None,
    ollama: str | None = None,
    llama_server: str | None = None,
    gguf_folders: list[Path] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> Discovery:
    """Look around once. Arguments override where to look (tests point them at loopback fakes)."""
    env = dict(os.environ if environ is None else environ)
    own_client = http is None
    # Loopback probes never go to a proxy; a server elsewhere (OLLAMA_HOST) follows the proxy settings.
    client = http or http_client(follow_redirects=False)
    try:
        folders = default_folders(env) if gguf_folders is None else gguf_folders
        ollama_found, llama_found, ggufs = await asyncio.gather(
            probe_ollama(client, ollama or ollama_url(env), timeout_s=timeout_s),
            probe_llama_server(client, llama_server or llama_server_url(env), timeout_s=timeout_s),
            asyncio.to_thread(find_gguf_folders, folders),
        )
    finally:
        if own_client:
            await client.aclose()
    keys = tuple(find_env_keys(env))
    log.info(
        "first-run discovery: ollama=%s llama-server=%s gguf=%d env keys=%d",
        bool(ollama_found),
        bool(llama_found),
        sum(f.count for f in ggufs),
        len(keys),
    )
    return Discovery(ollama=ollama_found, llama_server=llama_found, gguf_folders=ggufs, env_keys=keys)
