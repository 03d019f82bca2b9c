"""llama.cpp's llama-server: look at running servers and drive router mode.

`LlamaCppService` talks HTTP to any llama-server (one model, or a router over a folder of GGUFs);
the servers of our own it makes (`managed()`) are `ManagedServer`s (see `llamacpp_managed`).

While a managed server starts, restarts or switches models its port is closed or answers 503, so
the service tells callers (the chat's dispatcher) which URL is restarting and lets them wait for it.

A router loads any model a request names (`GET /props?model=X` too): status requests name only a
model its list shows loaded and not being unloaded from here, with `autoload=false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from desktop_app.domain.errors import (
    BadRequest,
    DomainError,
    ModelNotFound,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.llamacpp import (
    ManagedServerSpec,
    RouterModel,
    RouterModelStatus,
    ServerInfo,
    describe_exit,
)
from desktop_app.domain.text import without_bidi_controls
from desktop_app.domain.urls import same_server, server_root
from desktop_app.services.errors import TransportWording, error_reply, transport_error
from desktop_app.services.local.llamacpp_managed import START_TIMEOUT_S, ManagedServer

POLL_INTERVAL_S = 0.1
LOAD_TIMEOUT_S = 180.0
_REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


normalise_url = server_root  # the name the llama.cpp pane knows it by


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2] or url


def _unreachable(url: str) -> Unreachable:
    return Unreachable(
        f"Could not connect to llama-server at {_host(url)}.",
        "Check that it is running and that the address and port are right.",
        url=url,
    )


def _error_text(response: httpx.Response) -> str:
    return error_reply(response)[1]


def _parse_router_model(entry: dict[str, Any]) -> RouterModel:
    status = entry.get("status") or {}
    try:
        value = RouterModelStatus(status.get("value", "unloaded"))
    except ValueError:
        value = RouterModelStatus.UNLOADED
    path = entry.get("path") or ""
    if not path:
        # The entry names its file only in the arguments the router would start it with.
        args = status.get("args") or []
        for flag in ("--model", "-m"):
            if flag in args and args.index(flag) + 1 < len(args):
                path = args[args.index(flag) + 1]
                break
    exit_code = status.get("exit_code")
    return RouterModel(
        id=str(entry.get("id", "")),
        path=str(path),
        status=value,
        failed=bool(status.get("failed")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
    )


def _is_router_listing(body: Any) -> bool:
    """A router's GET /models entries carry a `status`; a one-model server's (same route) do not."""
    data = body.get("data") if isinstance(body, dict) else None
    return isinstance(data, list) and any(isinstance(e, dict) and isinstance(e.get("status"), dict) for e in data)


class LlamaCppService:
    """HTTP to llama-server; one shared `httpx.AsyncClient`, owned (and closed) by the app."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        poll_interval: float = POLL_INTERVAL_S,
        installed_binary: Callable[[], Path | None] = lambda: None,
        served: Callable[[Path], Awaitable[object]] | None = None,
    ) -> None:
        self._http = http
        self._installed_binary = installed_binary  # the llama-server the app installed, if any
        self._served = served  # told the binary of each server of ours that came up (old installs go then)
        self._poll = poll_interval
        self._servers: weakref.WeakSet[ManagedServer] = weakref.WeakSet()  # the ones `managed()` made
        # Per router URL, the models asked to unload here, until its list shows them unloaded.
        self._unloading: dict[str, set[str]] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def binary_served(self, binary: Path) -> None:
        """A server of ours on `binary` came up and answers."""
        if self._served is not None:
            await self._served(binary)

    def managed(self, spec: ManagedServerSpec, *, binary_setting: str = "") -> ManagedServer:
        """A server of our own for `spec` (not started yet)."""
        server = ManagedServer(
            spec, service=self, binary_setting=binary_setting, installed_binary=self._installed_binary
        )
        self._servers.add(server)
        return server

    # --- servers of our own that restart ---------------------------------------------------------

    def _servers_at(self, url: str) -> list[ManagedServer]:
        return [server for server in self._servers if server.url and same_server(server.url, url)]

    def restarting(self, url: str) -> bool:
        """A server of ours at `url` (an account's base URL will do) is starting, restarting or switching."""
        return any(server.restarting for server in self._servers_at(url))

    def restarts(self, url: str) -> int:
        """How many starts, restarts and switches servers of ours at `url` have begun: a change between
        two looks means one came (and maybe went) in between."""
        return sum(server.transitions for server in self._servers_at(url))

    async def wait_ready(self, url: str, timeout: float) -> bool:
        """Wait for the restart under way at `url`; True when it left the server running, False when
        it failed, took longer than `timeout`, or no restart was under way."""
        server = next((s for s in self._servers_at(url) if s.restarting), None)
        if server is None:
            return False
        try:
            return await asyncio.wait_for(server.wait_settled(), timeout)
        except TimeoutError:
            return False

    # --- requests ------------------------------------------------------------------------------

    async def _get(self, url: str, path: str, **params: str) -> httpx.Response:
        return await self._send(url, self._http.get(f"{url}{path}", params=params or None, timeout=_REQUEST_TIMEOUT))

    async def _post(self, url: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self._send(url, self._http.post(f"{url}{path}", json=body, timeout=_REQUEST_TIMEOUT))

    @staticmethod
    async def _send(url: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        """Await `request`; every httpx failure becomes TimedOut or Unreachable."""
        try:
            return await request
        except httpx.HTTPError as exc:
            unreachable = _unreachable(url)
            said = (unreachable.message, unreachable.action)
            error = transport_error(
                exc,
                TransportWording(
                    timed_out=(f"llama-server at {_host(url)} did not answer in time.", "It may be busy; try again."),
                    not_connected=said,
                    other=said,
                ),
                url=url,
            )
            raise (error or unreachable) from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    # --- inspecting ----------------------------------------------------------------------------

    async def inspect(self, url: str) -> ServerInfo:
        """Health, model, context and slots of the server at `url`; raises `Unreachable` and co."""
        url = normalise_url(url)
        health = await self._get(url, "/health")
        if health.status_code == 503:
            return ServerInfo(url=url, loading=True)
        if health.status_code != 200:
            raise ServerError(
                f"llama-server at {_host(url)} answered /health with HTTP {health.status_code}.",
                "Check that this address is a llama-server.",
                status=health.status_code,
            )
        props_r, models_r = await asyncio.gather(self._get(url, "/props"), self._get(url, "/models"))
        props = self._json(props_r) or {}
        listing = self._json(models_r)
        build = without_bidi_controls(str(props.get("build_info") or ""))
        if props.get("role") == "router" or _is_router_listing(listing):
            return await self._inspect_router(url, listing, build)

        if listing is None:  # builds without the /models alias
            listing = self._json(await self._get(url, "/v1/models"))
        data = (listing or {}).get("data") or [{}]
        first = data[0] if isinstance(data[0], dict) else {}
        meta = first.get("meta") or {}
        settings = props.get("default_generation_settings") or {}
        n_ctx = meta.get("n_ctx") or settings.get("n_ctx")
        total, busy = await self._slots(url, props)
        return ServerInfo(
            url=url,
            healthy=True,
            model_alias=str(first.get("id") or props.get("model_alias") or ""),
            model_path=str(props.get("model_path") or ""),
            n_ctx=int(n_ctx) if n_ctx else None,
            total_slots=total,
            busy_slots=busy,
            build=build,
        )

    async def _slots(self, url: str, props: dict[str, Any], **params: str) -> tuple[int | None, int | None]:
        total = props.get("total_slots")
        slots = self._json(await self._get(url, "/slots", **params))  # 501 when started with --no-slots
        if isinstance(slots, list):
            return len(slots), sum(1 for slot in slots if slot.get("is_processing"))
        return (int(total) if total else None), None

    async def _inspect_router(self, url: str, listing: Any, build: str) -> ServerInfo:
        if not _is_router_listing(listing):
            listing = {"data": []}
        models = self._note_listing(url, [_parse_router_model(e) for e in listing["data"] if isinstance(e, dict)])
        loaded = [m for m in models if m.status is RouterModelStatus.LOADED]
        info = ServerInfo(
            url=url,
            healthy=True,
            router_mode=True,
            build=build,
            models=tuple(models),
            model_alias=", ".join(m.id for m in loaded),
        )
        if len(loaded) != 1 or self.unloading(url, loaded[0].id):
            return info
        # One model loaded: its own figures, through the router (GET routes by ?model=).
        ask = {"model": loaded[0].id, "autoload": "false"}
        props = self._json(await self._get(url, "/props", **ask)) or {}
        if self.unloading(url, loaded[0].id):  # an unload began while /props was asked
            return info
        total, busy = await self._slots(url, props, **ask)
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
        return replace(
            info,
            model_path=str(props.get("model_path") or loaded[0].path),
            n_ctx=int(n_ctx) if n_ctx else None,
            total_slots=total,
            busy_slots=busy,
        )

    async def wait_healthy(
        self, url: str, timeout: float = START_TIMEOUT_S, alive: Callable[[], bool] | None = None
    ) -> None:
        """Return once /health says 200; `TimedOut` after `timeout`; stop early when `alive()` is False."""
        url = normalise_url(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if alive is not None and not alive():
                return
            with contextlib.suppress(httpx.HTTPError):
                response = await self._http.get(f"{url}/health", timeout=httpx.Timeout(2.0))
                if response.status_code == 200:
                    return
            if loop.time() >= deadline:
                raise TimedOut(
                    f"llama-server at {_host(url)} was not ready after {timeout:.0f} s.",
                    "Check its log; a large model may need longer to load.",
                )
            await asyncio.sleep(self._poll)

    # --- router mode ---------------------------------------------------------------------------

    def unloading(self, url: str, model: str) -> bool:
        """This service asked the router at `url` to unload `model`, and its list still shows it active."""
        return model in self._unloading.get(normalise_url(url), ())

    def _note_listing(self, url: str, models: list[RouterModel]) -> list[RouterModel]:
        """The router's own list is the state: a model it shows unloaded is no longer unloading."""
        pending = self._unloading.get(url)
        if pending:
            pending.difference_update(m.id for m in models if not m.active)
            pending.intersection_update(m.id for m in models)
        return models

    async def router_models(self, url: str) -> list[RouterModel]:
        url = normalise_url(url)
        response = await self._get(url, "/models")
        body = self._json(response)
        if body is None:
            raise ServerError(
                f"llama-server at {_host(url)} did not list its models (HTTP {response.status_code}).",
                status=response.status_code,
            )
        if not _is_router_listing(body):
            if not body.get("data"):
                return []
            raise BadRequest(
                f"llama-server at {_host(url)} serves one model, not a router over a folder.",
                "Start it without -m, with --models-dir, to load and unload models.",
            )
        return self._note_listing(url, [_parse_router_model(e) for e in body["data"] if isinstance(e, dict)])

    async def load(self, url: str, model: str) -> None:
        """Ask the router to load `model`; returns at once (see `wait_model`). Loaded already is fine."""
        url = normalise_url(url)
        self._unloading.get(url, set()).discard(model)
        response = await self._post(url, "/models/load", {"model": model})
        if response.status_code == 200:
            return
        text = _error_text(response)
        if response.status_code == 400 and "already" in text:
            return
        raise self._model_error(url, model, response.status_code, text, "load")

    async def unload(self, url: str, model: str) -> None:
        """Ask the router to unload `model`; returns at once. Not running is fine."""
        url = normalise_url(url)
        pending = self._unloading.setdefault(url, set())
        pending.add(model)  # from now on no status request names it
        try:
            response = await self._post(url, "/models/unload", {"model": model})
        except DomainError:
            pending.discard(model)
            raise
        if response.status_code == 200:
            return
        pending.discard(model)
        text = _error_text(response)
        if response.status_code == 400 and "not running" in text:
            return
        raise self._model_error(url, model, response.status_code, text, "unload")

    @staticmethod
    def _model_error(url: str, model: str, status: int, text: str, verb: str) -> DomainError:
        if status == 404 or "not found" in text:
            return ModelNotFound(
                f"llama-server at {_host(url)} has no model {model}.",
                "Refresh the list; the router only sees the files in its folder.",
            )
        return ServerError(
            f"llama-server at {_host(url)} could not {verb} {model} (HTTP {status}: {text}).", status=status
        )

    async def wait_model(
        self, url: str, model: str, status: RouterModelStatus, timeout: float = LOAD_TIMEOUT_S
    ) -> RouterModel:
        """Poll GET /models until `model` has `status`; a failed load raises `ServerError`."""
        url = normalise_url(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen_loading = False
        while True:
            found = {m.id: m for m in await self.router_models(url)}.get(model)
            if found is None:
                raise ModelNotFound(
                    f"llama-server at {_host(url)} has no model {model}.",
                    "Refresh the list; the router only sees the files in its folder.",
                )
            if found.status is status:
                return found
            seen_loading = seen_loading or found.status is RouterModelStatus.LOADING
            if status is RouterModelStatus.LOADED and seen_loading and found.status is RouterModelStatus.UNLOADED:
                why = f" ({describe_exit(found.exit_code)})" if found.failed else ""
                raise ServerError(
                    f"{model} could not be loaded{why}.",
                    "Check the router's log; the file may be damaged or too large for memory.",
                )
            if loop.time() >= deadline:
                raise TimedOut(
                    f"{model} was not {status.value} after {timeout:.0f} s.",
                    "A large model may need longer; check the router's log.",
                )
            await asyncio.sleep(self._poll)

    async def switch(self, url: str, model: str, timeout: float = LOAD_TIMEOUT_S) -> RouterModel:
        """Unload every other model, load `model`, and return once it is loaded and the others are gone."""
        url = normalise_url(url)
        models = await self.router_models(url)
        if model not in {m.id for m in models}:
            raise ModelNotFound(
                f"llama-server at {_host(url)} has no model {model}.",
                "Refresh the list; the router only sees the files in its folder.",
            )
        others = [m.id for m in models if m.id != model and m.active]
        for other in others:
            await self.unload(url, other)
        await self.load(url, model)
        for other in others:
            await self.wait_model(url, other, RouterModelStatus.UNLOADED, timeout)
        return await self.wait_model(url, model, RouterModelStatus.LOADED, timeout)
