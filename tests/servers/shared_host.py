"""Several loopback twins behind one address, as one real host serves several APIs (api.anthropic.com
answers the Messages API and the Admin API alike)::

    messages, admin = AnthropicServer(), AnthropicAdminTwin()
    with SharedHost(messages, {"/v1/organizations/": admin}) as host:
        ...  # host.base_url == messages.base_url == admin.base_url

A request goes to the twin whose path prefix it starts with, else to the default twin. That twin
answers it with its own code and rules, and records it in its own ``requests``; the host only reads
the request (as the default twin reads one, since HTTP is the host's) and records every request too.
The twins are not started on their own: the host's loop runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.servers._http import LoopbackServer, Request


class SharedHost(LoopbackServer):
    thread_name = "shared-host"
    start_error = "the shared loopback host failed to start"

    def __init__(
        self,
        default: LoopbackServer,
        routes: Mapping[str, LoopbackServer],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.default = default
        self.routes = dict(routes)
        self.bad_request = default.bad_request

    @property
    def twins(self) -> list[LoopbackServer]:
        return [self.default, *self.routes.values()]

    def twin_for(self, path: str) -> LoopbackServer:
        return next((twin for prefix, twin in self.routes.items() if path.startswith(prefix)), self.default)

    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        def bound(port: int) -> None:
            for twin in self.twins:  # their base_url is the host's
                twin.host, twin.port = self.host, port
            if on_ready is not None:
                on_ready(port)

        await super().serve(on_ready=bound)

    # -- hooks: the chosen twin's, so each keeps its own strictness and record -------------------
    def _background_tasks(self) -> Iterable[asyncio.Task[Any]]:
        return [task for twin in self.twins for task in twin._background_tasks()]

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        return await self.default._read(reader, writer)

    def _bad_request_answer(self, exc: Exception) -> bytes:
        return self.default._bad_request_answer(exc)

    def _record(self, req: Request, conn: int) -> None:
        super()._record(req, conn)
        self.twin_for(req.path)._record(req, conn)

    async def _exchange(self, req: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return await self.twin_for(req.path)._exchange(req, reader, writer)
