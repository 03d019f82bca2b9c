"""The Hugging Face Hub, as the Discover view needs it: search, a repo's files, a file's GGUF header.

Everything goes to one endpoint, `HF_ENDPOINT` when set (a mirror, or the tests' loopback twin),
else https://huggingface.co, through the app's shared `httpx.AsyncClient`. The requests are the
Hub's documented API: `GET /api/models` (search), `GET /api/models/{repo}[/revision/{rev}]`
(details), `GET /api/models/{repo}/tree/{rev}?recursive=true` (files, sizes and LFS sha256,
paginated by `Link` headers) and `GET /{repo}/resolve/{rev}/{path}` (the bytes, usually by a
redirect to a CDN; `Range` requests are honoured).

Why not `huggingface_hub.HfApi`: it is blocking (every call would hold a worker thread that cannot
be cancelled when the user types on), and it has its own HTTP session outside the app's proxy
and loopback rules. The cache layout, where that library sets the standard, is followed to the
letter (see `hf_downloads`). The token (an account of provider "huggingface") goes only in the
Authorization header, and httpx drops it when a redirect leaves the Hub's host.

The Discover view, end to end (every call raises a DomainError in one sentence)::

    hub = HubClient(http, token=token_from_accounts(lambda: accounts.accounts, secrets))
    repos = await hub.search("gemma", sort=HubSort.LIKES)     # licence, gated, downloads, likes
    repo = await hub.repo(repos[0].id)                       # the commit to pin (repo.sha)
    quants = await hub.quant_files(repo.id, repo.sha)        # sizes; split parts grouped
    _info, shape = await hub.read_header(repo.id, quants[0], repo.sha)  # a few MB by range
    verdicts = fit_all(quants, shape, await detect_hardware(), context=8192)  # domain.hub
    job = downloads.start(DownloadRequest(repo.id, quants[0], repo.sha))     # hf_downloads
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import quote

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import AuthFailed, DomainError, TimedOut, Unreachable
from desktop_app.domain.gguf import GgufInfo
from desktop_app.domain.hub import (
    GatedRepo,
    HubError,
    HubFile,
    HubNotFound,
    HubRepo,
    HubSort,
    ModelShape,
    QuantFile,
    group_quant_files,
    shape_from_metadata,
)
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.local.gguf_header import GgufError, HeaderCut, read_gguf_prefix

DEFAULT_ENDPOINT = "https://huggingface.co"
SEARCH_LIMIT = 30
HEADER_FIRST_BYTES = 4 * 1024 * 1024  # most headers fit; Gemma's 262k-token vocabulary needs 8 MiB
HEADER_MAX_BYTES = 64 * 1024 * 1024
MAX_TREE_PAGES = 50
_SEARCH_FIELDS = ("downloads", "likes", "lastModified", "gated", "private", "tags")

TokenSource = Callable[[], Awaitable[str | None]]
HF_PROVIDER = "huggingface"


def token_from_accounts(accounts: Callable[[], Sequence[Account]], secrets: SecretStore) -> TokenSource:
    """The token of the first enabled Hugging Face account, read from the keyring on each request
    (so a token added or changed in Accounts is used at once); None when there is none."""

    async def token() -> str | None:
        for account in accounts():
            if account.provider_id == HF_PROVIDER and account.enabled and (secret := await secrets.get(account.id)):
                return secret
        return None

    return token


def hub_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """HF_ENDPOINT as huggingface_hub reads it, without a trailing slash."""
    env = os.environ if environ is None else environ
    return (env.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT).rstrip("/")


def _license(tags: Any, card: Any) -> str:
    if isinstance(card, dict) and isinstance(card.get("license"), str):
        return card["license"]
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.removeprefix("license:")
    return ""


def repo_from_json(data: Mapping[str, Any]) -> HubRepo:
    """A search hit or a repo's details as the Hub sends them."""
    gated = data.get("gated", False)
    return HubRepo(
        id=str(data.get("id") or data.get("modelId") or ""),
        downloads=int(data.get("downloads") or 0),
        likes=int(data.get("likes") or 0),
        last_modified=str(data.get("lastModified") or ""),
        gated=gated if isinstance(gated, (bool, str)) else bool(gated),
        private=bool(data.get("private", False)),
        license=_license(data.get("tags"), data.get("cardData")),
        sha=str(data.get("sha") or ""),
    )


def file_from_json(data: Mapping[str, Any]) -> HubFile | None:
    """One entry of a tree listing; None for a folder."""
    if data.get("type") != "file":
        return None
    lfs = data.get("lfs") if isinstance(data.get("lfs"), dict) else None
    sha256 = str(lfs.get("oid") or "") if lfs else ""
    size = int((lfs or {}).get("size") or data.get("size") or 0)
    return HubFile(str(data["path"]), size, sha256.removeprefix("sha256:"))


class HubClient:
    """Search the Hub and read what a repo holds; every failure is a DomainError in one sentence."""

    def __init__(
        self, client: httpx.AsyncClient, *, endpoint: str | None = None, token: TokenSource | None = None
    ) -> None:
        self._client = client
        self.endpoint = (endpoint or hub_endpoint()).rstrip("/")
        self._token = token

    # --- what the UI calls ----------------------------------------------------------------------

    async def search(
        self, query: str, *, sort: HubSort = HubSort.DOWNLOADS, limit: int = SEARCH_LIMIT
    ) -> list[HubRepo]:
        """GGUF repos matching `query`, most downloaded (liked, recent) first."""
        params: list[tuple[str, str | int]] = [
            ("search", query.strip()),
            ("filter", "gguf"),
            ("sort", str(sort)),
            ("direction", -1),
            ("limit", limit),
        ]
        params += [("expand[]", name) for name in _SEARCH_FIELDS]
        response = await self._get(f"{self.endpoint}/api/models", "the search", params=params)
        payload = self._json(response, "the search")
        if not isinstance(payload, list):
            raise HubError("Hugging Face sent a search result ModelDesk could not read.", "Try again later.")
        return [repo_from_json(item) for item in payload if isinstance(item, dict)]

    async def repo(self, repo_id: str, revision: str = "main") -> HubRepo:
        """The repo's details: licence, gating, and the commit `revision` is at."""
        path = f"/api/models/{_quoted(repo_id)}" + (
            f"/revision/{quote(revision, safe='')}" if revision != "main" else ""
        )
        response = await self._get(self.endpoint + path, f"the model “{repo_id}”", repo_id=repo_id)
        payload = self._json(response, f"the model “{repo_id}”")
        if not isinstance(payload, dict):
            raise HubError(f"Hugging Face sent details of “{repo_id}” ModelDesk could not read.", "Try again later.")
        return repo_from_json(payload)

    async def files(self, repo_id: str, revision: str = "main") -> list[HubFile]:
        """Every file of the repo at `revision`, with its size and LFS sha256."""
        url: str | None = f"{self.endpoint}/api/models/{_quoted(repo_id)}/tree/{quote(revision, safe='')}"
        params: dict[str, str] | None = {"recursive": "true"}
        files: list[HubFile] = []
        for _page in range(MAX_TREE_PAGES):
            if url is None:
                break
            response = await self._get(url, f"the files of “{repo_id}”", params=params, repo_id=repo_id)
            payload = self._json(response, f"the files of “{repo_id}”")
            if not isinstance(payload, list):
                raise HubError(f"Hugging Face sent a file list of “{repo_id}” ModelDesk could not read.", "Try again.")
            files.extend(f for item in payload if isinstance(item, dict) and (f := file_from_json(item)) is not None)
            next_link = response.links.get("next", {}).get("url")
            url, params = (str(response.url.join(next_link)), None) if next_link else (None, None)
        return files

    async def quant_files(self, repo_id: str, revision: str = "main") -> list[QuantFile]:
        """The repo's GGUF models, split parts grouped, smallest first."""
        return group_quant_files(await self.files(repo_id, revision))

    async def read_header(
        self, repo_id: str, quant: QuantFile, revision: str = "main"
    ) -> tuple[GgufInfo, ModelShape | None]:
        """The first part's GGUF header, fetched by HTTP range (a few MB, never the weights)."""
        part = quant.parts[0]
        wanted = min(part.size, HEADER_FIRST_BYTES) if part.size else HEADER_FIRST_BYTES
        while True:
            data, size = await self._range(repo_id, part.path, revision, wanted)
            try:
                info, numbers = await _parse_prefix(data, size, part.path)
            except HeaderCut as cut:
                if cut.wanted <= len(data) or cut.wanted > HEADER_MAX_BYTES:
                    raise HubError(f"The header of “{part.path}” is larger than ModelDesk reads ahead.", "") from None
                wanted = cut.wanted
                continue
            except GgufError as exc:
                raise HubError(f"“{part.path}” cannot be used: {exc.reason}", "Pick another file.") from None
            return info, shape_from_metadata(info.architecture, numbers)

    def file_url(self, repo_id: str, path: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{_quoted(repo_id)}/resolve/{quote(revision, safe='')}/{quote(path)}"

    async def auth_headers(self) -> dict[str, str]:
        token = await self._token() if self._token is not None else None
        return {"authorization": f"Bearer {token}"} if token else {}

    # --- plumbing -------------------------------------------------------------------------------

    async def _range(self, repo_id: str, path: str, revision: str, length: int) -> tuple[bytes, int]:
        """The file's first `length` bytes and its whole size (a server ignoring Range is cut off)."""
        headers = await self.auth_headers()
        headers["range"] = f"bytes=0-{length - 1}"
        data = bytearray()
        try:
            async with self._client.stream(
                "GET", self.file_url(repo_id, path, revision), headers=headers, follow_redirects=True
            ) as response:
                refused = hub_status_error(response, repo_id, path, has_token="authorization" in headers)
                if refused is not None:
                    raise refused
                # Closed here when left early, not by the garbage collector (with no loop by then).
                async with contextlib.aclosing(cast(AsyncGenerator[bytes, None], response.aiter_raw())) as chunks:
                    async for chunk in chunks:
                        data += chunk
                        if len(data) >= length:
                            break
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        return bytes(data[:length]), _total_size(response) or len(data)

    async def _get(self, url: str, what: str, *, params: Any = None, repo_id: str = "") -> httpx.Response:
        headers = await self.auth_headers()
        headers["accept"] = "application/json"
        try:
            response = await self._client.get(url, params=params, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        raise_for_hub_status(response, repo_id, "", has_token="authorization" in headers)
        return response

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise HubError(
                f"Hugging Face sent {what} in a form ModelDesk could not read.", "Try again later."
            ) from None

    def transport_error(self, exc: BaseException) -> DomainError:
        host = httpx.URL(self.endpoint).host
        if isinstance(exc, httpx.TimeoutException):
            return TimedOut(f"{host} did not answer in time.", "Check the connection and try again.")
        return Unreachable(f"{host} could not be reached.", "Check the connection and try again.", url=self.endpoint)


async def _parse_prefix(data: bytes, size: int, name: str) -> tuple[GgufInfo, dict[str, int]]:
    import asyncio

    return await asyncio.to_thread(read_gguf_prefix, data, size, name)  # MBs of tokenizer: not on the loop


def _quoted(repo_id: str) -> str:
    return "/".join(quote(part, safe="") for part in repo_id.split("/"))


def _total_size(response: httpx.Response) -> int | None:
    """The whole file's size from `Content-Range: bytes 0-99/1234` (or the length of a 200)."""
    content_range = response.headers.get("content-range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length", "")
    return int(length) if response.status_code == 200 and length.isdigit() else None


def raise_for_hub_status(response: httpx.Response, repo_id: str, path: str, *, has_token: bool) -> None:
    if (error := hub_status_error(response, repo_id, path, has_token=has_token)) is not None:
        raise error


def hub_status_error(response: httpx.Response, repo_id: str, path: str, *, has_token: bool) -> DomainError | None:
    """The Hub's refusals as one sentence each; it names the cause in the `X-Error-Code` header."""
    status = response.status_code
    if status < 400:
        return None
    code = response.headers.get("x-error-code", "")
    what = f"“{path}” in “{repo_id}”" if path else f"“{repo_id}”"
    if code == "GatedRepo" or (status == 403 and repo_id):
        if has_token:
            return GatedRepo(
                f"{what} is gated and this Hugging Face token has no access to it.",
                "Accept the model's terms on its Hugging Face page, then try again.",
            )
        return GatedRepo(
            f"{what} is gated: Hugging Face wants a token before it hands out the file.",
            "Add a Hugging Face account with a token (Accounts), after accepting the model's terms.",
        )
    if code == "RepoNotFound" or (status == 401 and repo_id and not has_token):
        return HubNotFound(
            f"There is no model “{repo_id}” on Hugging Face, or it is private.",
            "Check the name; for a private model add a Hugging Face token.",
        )
    if status == 401:
        return AuthFailed("Hugging Face rejected the token.", "Paste a valid token in the Hugging Face account.")
    if status == 404 or code in ("EntryNotFound", "RevisionNotFound"):
        return HubNotFound(f"{what} does not exist (any more) on Hugging Face.", "Refresh the list of files.")
    if status == 416:
        return HubError(f"{what} is shorter than ModelDesk expected.", "Refresh the list of files and try again.")
    if status == 429:
        return HubError("Hugging Face asks ModelDesk to slow down (too many requests).", "Wait a minute and try again.")
    return HubError(f"Hugging Face answered HTTP {status}.", "Try again later.")
