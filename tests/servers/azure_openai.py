"""A strict loopback twin of an Azure OpenAI resource: deployments' chat completions, with faults.

Follows the data-plane reference (learn.microsoft.com/rest/api/azureopenai, api-version 2024-10-21):
- ``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (Chat Completions -
  Create): the body and the stream are OpenAI's, so they come from ``openai_fault``, whose
  deployment-named behaviours (``ok``, ``fault-429``, ``fault-cut``...) apply to the deployment name,
  and the body's ``model`` is optional (the deployment names the model);
- ``GET /openai/models?api-version=...`` (Models - List), which ModelDesk's Check calls;
- ``GET /openai/deployments?api-version=2022-12-01`` (Deployments - List of the 2022-12-01 data
  plane, retired since: ``list_deployments = False`` answers 404 as newer resources do).
The key goes in the ``api-key`` header (security scheme ``api-key``, in: header). Errors have
Azure's body ``{"error": {"code", "message"}}``: a missing or wrong key is 401 "Access denied due to
invalid subscription key or wrong API endpoint", a missing api-version 404 "Resource not found", an
api-version not of the form YYYY-MM-DD[-preview] or not served 400 "API version not supported", and
an unknown deployment 404 DeploymentNotFound.

Use it in-process: ``with AzureServer(deployments={"gpt-4o": "ok"}) as server: server.endpoint``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs

from tests.servers._http import Exchange, Request, parse_json, send
from tests.servers.openai_fault import FaultServer, _complete, _fault, _json_response, _request_id, _validate_chat
from tests.servers.openai_parts import ApiError

# What the twin serves: the GA versions and previews of the data plane it follows.
API_VERSIONS = frozenset({"2022-12-01", "2024-06-01", "2024-10-21", "2025-04-01-preview"})
_VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_CHAT_PATH = re.compile(r"/openai/deployments/([^/]+)/chat/completions")


class AzureError(ApiError):
    """An error with Azure's body, which has no type or param."""

    def __init__(self, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status, message, headers=headers)
        self.payload = {"error": {"code": code, "message": message}}


ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


class AzureServer(FaultServer):
    """``deployments`` maps each deployment name to the ``openai_fault`` behaviour it answers with."""

    thread_name = "azure-openai-twin"
    start_error = "Azure OpenAI twin failed to start"
    default_keys = ("azure-key-0123456789abcdef",)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        valid_keys: set[str] | None = None,
        deployments: dict[str, str] | None = None,
        *,
        list_deployments: bool = True,
    ) -> None:
        super().__init__(host, port, valid_keys)
        self.deployments = deployments if deployments is not None else {"gpt-4o": "ok"}
        self.list_deployments = list_deployments
        self.seen_paths: list[str] = []  # path and query of every request, to check nothing leaks there

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        rid = _request_id()
        with self._lock:
            self.seen_paths.append(req.path)
        try:
            payload = self._azure_route(req)
        except ApiError as exc:
            return await send(writer, _json_response(exc.status, exc.payload, rid, extra=exc.headers))
        if isinstance(payload, tuple):
            chat, behaviour = payload
            chat.model = behaviour
            return await _complete(chat, writer, state, rid)
        return await send(writer, _json_response(200, payload, rid))

    def _azure_route(self, req: Request) -> Any:
        path, _, query = req.path.partition("?")
        not_found = AzureError(404, "404", "Resource not found")
        if not path.startswith("/openai/"):
            raise not_found
        key = req.headers.get("api-key", "")
        if not key or key not in self.valid_keys:
            raise AzureError(401, "401", ACCESS_DENIED)
        versions = parse_qs(query).get("api-version", [])
        if not versions:
            raise not_found
        if not _VERSION_SHAPE.fullmatch(versions[0]) or versions[0] not in API_VERSIONS:
            raise AzureError(400, "BadRequest", "API version not supported")
        if req.method == "GET" and path == "/openai/models":
            return {"object": "list", "data": [_model(name) for name in ("gpt-4o", "gpt-4o-mini", "gpt-35-turbo")]}
        if req.method == "GET" and path == "/openai/deployments":
            if not self.list_deployments:
                raise not_found
            return {"object": "list", "data": [_deployment(name) for name in self.deployments]}
        chat_path = _CHAT_PATH.fullmatch(path)
        if req.method == "POST" and chat_path:
            deployment = chat_path.group(1)
            behaviour = self.deployments.get(deployment)
            if behaviour is None:
                raise AzureError(
                    404,
                    "DeploymentNotFound",
                    "The API deployment for this resource does not exist. If you created the deployment "
                    "within the last 5 minutes, please wait a moment and try again.",
                )
            body = parse_json(req.raw_body)
            if isinstance(body, dict):  # the deployment names the model: Azure needs no "model" field
                body.setdefault("model", deployment)
            chat = _validate_chat(body)
            fault = _fault(behaviour, key) or self._flaky_fault(behaviour)
            if fault is not None:
                raise fault
            return chat, behaviour
        raise not_found


def _model(name: str) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "capabilities": {
            "fine_tune": False,
            "inference": True,
            "completion": False,
            "chat_completion": True,
            "embeddings": False,
        },
        "lifecycle_status": "generally-available",
        "id": name,
        "created_at": 1715558400,
        "object": "model",
    }


def _deployment(name: str) -> dict[str, Any]:
    return {
        "scale_settings": {"scale_type": "standard"},
        "model": name,
        "owner": "organization-owner",
        "id": name,
        "status": "succeeded",
        "created_at": 1715558400,
        "updated_at": 1715558400,
        "object": "deployment",
    }
