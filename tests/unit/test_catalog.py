"""ModelCatalog asks a provider: checking a key and listing its models, each provider's way, over
loopback servers that check what they are sent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.ratelimits import parse_rate_limit_headers
from desktop_app.services.accounts import catalog as catalog_module
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import CheckStatus, ModelCatalog
from desktop_app.services.settings import SettingsService
from tests.servers.anthropic_fault import AnthropicServer, organization_id
from tests.servers.openai_fault import MODELS, FaultServer
from tests.unit.conftest import compatible, one_sentence

KEY = "sk-test"


def assert_key_only_in_header(requests: list[httpx.Request], header: str, value: str) -> None:
    assert requests
    for request in requests:
        assert KEY not in str(request.url)
        assert request.headers[header] == value
        assert not [name for name, v in request.headers.items() if KEY in v and name.lower() != header]


# --- OpenAI-style list against the fault server ----------------------------------------------------


@pytest.mark.asyncio
async def test_a_good_key_lists_the_models(catalog: ModelCatalog, server: FaultServer) -> None:
    result = await catalog.check(compatible(server.base_url), KEY)

    assert result.status is CheckStatus.OK
    assert result.models == tuple(sorted(MODELS))
    assert result.message == f"OK: the key works and {len(MODELS)} models are available."
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")


@pytest.mark.asyncio
async def test_the_key_goes_only_in_the_authorization_header(
    catalog: ModelCatalog, server: FaultServer, sent: list[httpx.Request]
) -> None:
    await catalog.check(compatible(server.base_url), KEY)

    assert_key_only_in_header(sent, "authorization", f"Bearer {KEY}")
    (received,) = server.requests
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert [name for name, value in received.headers.items() if KEY in value] == ["authorization"]
    assert KEY not in received.path


@pytest.mark.asyncio
async def test_a_wrong_key_is_an_invalid_key(catalog: ModelCatalog, server: FaultServer) -> None:
    result = await catalog.check(compatible(server.base_url), "sk-wrong-key-for-this-server")

    assert result.status is CheckStatus.INVALID_KEY
    assert one_sentence(result.message)
    assert result.models == ()


@pytest.mark.asyncio
async def test_a_compatible_server_that_wants_a_key_sees_none_sent(catalog: ModelCatalog, server: FaultServer) -> None:
    result = await catalog.check(compatible(server.base_url), None)

    assert result.status is CheckStatus.INVALID_KEY
    assert "authorization" not in server.requests[0].headers


@pytest.mark.asyncio
async def test_a_provider_that_needs_a_key_is_not_asked_without_one(catalog: ModelCatalog, server: FaultServer) -> None:
    result = await catalog.check(Account(provider_id="openai", label="Cloud", base_url=server.base_url), None)

    assert result.status is CheckStatus.INVALID_KEY
    assert one_sentence(result.message)
    assert server.requests == []


@pytest.mark.asyncio
async def test_a_port_nobody_listens_on_is_unreachable(catalog: ModelCatalog) -> None:
    with socket.socket() as sock:  # bound, never listening: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = await catalog.check(compatible(f"http://127.0.0.1:{port}/v1"), KEY)

    assert result.status is CheckStatus.UNREACHABLE
    assert f"127.0.0.1:{port}" in result.message and one_sentence(result.message)


@pytest.mark.asyncio
async def test_a_wrong_base_url_is_an_error_with_the_status(catalog: ModelCatalog, server: FaultServer) -> None:
    # Without /v1 the fault server answers 404 "Invalid URL", as OpenAI does.
    result = await catalog.check(compatible(server.base_url.removesuffix("/v1")), KEY)

    assert result.status is CheckStatus.ERROR
    assert "HTTP 404" in result.message and one_sentence(result.message)


@pytest.mark.asyncio
async def test_a_server_that_never_answers_times_out(
    catalog: ModelCatalog, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "CHECK_TIMEOUT_S", 0.3)
    result = await catalog.check(compatible(f"http://127.0.0.1:{silent_port}/v1"), KEY)

    assert result.status is CheckStatus.TIMEOUT
    assert f"127.0.0.1:{silent_port}" in result.message and one_sentence(result.message)


# --- other list styles, each against a loopback server that checks its headers ---------------------


@dataclass(frozen=True)
class Seen:
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names


Responder = Callable[[Seen], tuple[Any, ...]]  # (status, payload[, headers])


class Loopback:
    """http.server on a thread: records each GET and answers what `respond` returns."""

    def __init__(self, respond: Responder) -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                outer.seen.append(seen)
                status, payload, *extra = respond(seen)  # optionally a dict of response headers
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


StartLoopback = Callable[[Responder], Loopback]


@pytest.fixture
def loopback() -> Iterator[StartLoopback]:
    started: list[Loopback] = []

    def start(respond: Responder) -> Loopback:
        started.append(Loopback(respond))
        return started[-1]

    yield start
    for server in started:
        server.close()


def ollama_tags(seen: Seen) -> tuple[int, Any]:
    if seen.path != "/api/tags":
        return 404, b"404 page not found"
    details = {"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
    return 200, {
        "models": [
            {
                "name": "qwen2.5:0.5b",
                "model": "qwen2.5:0.5b",
                "modified_at": "2025-01-01T10:00:00Z",
                "size": 397821319,
                "digest": "a8b0c5157701",
                "details": details,
            },
            {
                "name": "llama3.2:latest",
                "model": "llama3.2:latest",
                "modified_at": "2025-01-02T10:00:00Z",
                "size": 2019393189,
                "digest": "a80c4f17acd5",
                "details": details,
            },
        ]
    }


def anthropic_models(seen: Seen) -> tuple[int, Any]:
    if seen.headers.get("x-api-key") != KEY:
        return 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    if seen.headers.get("anthropic-version") != "2023-06-01":
        return 400, {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
        }
    if not seen.path.startswith("/v1/models"):
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
    data = [
        {
            "type": "model",
            "id": "claude-sonnet-4-20250514",
            "display_name": "Claude Sonnet 4",
            "created_at": "2025-05-22T00:00:00Z",
        },
        {
            "type": "model",
            "id": "claude-3-5-haiku-20241022",
            "display_name": "Claude Haiku 3.5",
            "created_at": "2024-10-22T00:00:00Z",
        },
    ]
    return 200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def gemini_models(seen: Seen) -> tuple[int, Any]:
    if "x-goog-api-key" not in seen.headers:
        return 403, {
            "error": {
                "code": 403,
                "message": "Method doesn't allow unregistered callers.",
                "status": "PERMISSION_DENIED",
            }
        }
    if seen.headers["x-goog-api-key"] != KEY:
        # What Google really answers for a wrong key: 400, not 401.
        return 400, {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            }
        }
    if not seen.path.startswith("/v1beta/models"):
        return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
    return 200, {
        "models": [
            {
                "name": "models/gemini-2.0-flash",
                "version": "2.0",
                "displayName": "Gemini 2.0 Flash",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
            },
            {
                "name": "models/text-embedding-004",
                "version": "004",
                "displayName": "Text Embedding 004",
                "supportedGenerationMethods": ["embedContent"],
            },
            {
                "name": "models/gemini-1.5-pro",
                "version": "001",
                "displayName": "Gemini 1.5 Pro",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {
                "name": "models/imagen-3.0-generate-002",
                "version": "002",
                "displayName": "Imagen 3",
                "supportedGenerationMethods": ["predict"],
            },
        ]
    }


@pytest.mark.asyncio
async def test_ollama_tags_are_listed_without_any_key(catalog: ModelCatalog, loopback: StartLoopback) -> None:
    server = loopback(ollama_tags)
    account = Account(provider_id="ollama", label="Ollama here", base_url=server.base_url)
    result = await catalog.check(account, None)

    assert result.status is CheckStatus.OK
    assert result.models == ("llama3.2:latest", "qwen2.5:0.5b")
    (seen,) = server.seen
    assert seen.path == "/api/tags"
    assert "authorization" not in seen.headers


@pytest.mark.parametrize(
    ("provider_id", "respond", "key_header", "path", "own_headers", "models"),
    [
        pytest.param(
            "anthropic",
            anthropic_models,
            "x-api-key",
            "/v1/models",
            {"anthropic-version": "2023-06-01"},
            ("claude-3-5-haiku-20241022", "claude-sonnet-4-20250514"),
            id="anthropic",
        ),
        # Only the models that generate content: not the embedding and image models listed beside them.
        pytest.param(
            "gemini",
            gemini_models,
            "x-goog-api-key",
            "/v1beta/models",
            {},
            ("gemini-1.5-pro", "gemini-2.0-flash"),
            id="gemini",
        ),
    ],
)
@pytest.mark.asyncio
async def test_a_cloud_provider_lists_its_models_with_its_own_headers(
    catalog: ModelCatalog,
    loopback: StartLoopback,
    sent: list[httpx.Request],
    provider_id: str,
    respond: Responder,
    key_header: str,
    path: str,
    own_headers: dict[str, str],
    models: tuple[str, ...],
) -> None:
    server = loopback(respond)
    result = await catalog.check(Account(provider_id=provider_id, label="Cloud", base_url=server.base_url), KEY)

    assert result.status is CheckStatus.OK, result.message
    assert result.models == models
    (seen,) = server.seen
    assert seen.path.split("?")[0] == path
    assert own_headers.items() <= seen.headers.items()
    assert "authorization" not in seen.headers
    assert "key=" not in seen.path  # never ?key=..., which ends up in proxy and server logs
    assert_key_only_in_header(sent, key_header, KEY)


@pytest.mark.parametrize(
    ("provider_id", "respond", "wrong_key"),
    [
        pytest.param("anthropic", anthropic_models, "sk-ant-wrong", id="anthropic"),
        pytest.param("gemini", gemini_models, "AIza-wrong", id="gemini"),
    ],
)
@pytest.mark.asyncio
async def test_a_cloud_provider_rejecting_the_key_is_an_invalid_key(
    catalog: ModelCatalog, loopback: StartLoopback, provider_id: str, respond: Responder, wrong_key: str
) -> None:
    server = loopback(respond)
    result = await catalog.check(Account(provider_id=provider_id, label="Cloud", base_url=server.base_url), wrong_key)

    assert result.status is CheckStatus.INVALID_KEY, result.message


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>an nginx welcome page</html>",
        b'{"object": "list", "data": [{"name": "no id"}]}',
        b'{"object": "list", "data": 3}',
        b"[]",
    ],
)
@pytest.mark.asyncio
async def test_a_model_list_that_cannot_be_read_is_an_error(
    catalog: ModelCatalog, loopback: StartLoopback, payload: bytes
) -> None:
    server = loopback(lambda _seen: (200, payload))
    result = await catalog.check(compatible(server.base_url), KEY)

    assert result.status is CheckStatus.ERROR
    assert one_sentence(result.message)
    assert "could not read" in result.message


# --- extra headers, key-check endpoints, organisation ids --------------------------------------------


@pytest.mark.asyncio
async def test_the_accounts_extra_headers_are_sent(catalog: ModelCatalog, server: FaultServer) -> None:
    account = compatible(server.base_url).model_copy(
        update={"extra_headers": {"X-Team": "research", "OpenAI-Project": "proj_123"}}
    )
    result = await catalog.check(account, KEY)

    assert result.status is CheckStatus.OK
    (received,) = server.requests
    assert (received.headers["x-team"], received.headers["openai-project"]) == ("research", "proj_123")
    assert received.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.asyncio
async def test_extra_headers_never_replace_the_auth_header(catalog: ModelCatalog, server: FaultServer) -> None:
    # The Account validator refuses such headers; model_construct skips it, as a hand-edited
    # settings file read by some future code path might.
    account = Account.model_construct(
        **{**compatible(server.base_url).model_dump(), "extra_headers": {"Authorization": "Bearer sk-other"}}
    )
    result = await catalog.check(account, KEY)

    assert result.status is CheckStatus.OK
    (received,) = server.requests
    assert received.headers["authorization"] == f"Bearer {KEY}"


def openrouter_like(seen: Seen) -> tuple[int, Any]:
    """OpenRouter: /models is public, /key needs a valid Bearer key."""
    path = seen.path.split("?")[0]
    if path == "/api/v1/models":
        return 200, {"data": [{"id": "anthropic/claude-sonnet-4.5"}, {"id": "openai/gpt-4o-mini"}]}
    if path == "/api/v1/key":
        if seen.headers.get("authorization") != f"Bearer {KEY}":
            return 401, {"error": {"message": "User not found.", "code": 401}}
        return 200, {"data": {"label": "sk-or-v1-abc...xyz", "usage": 0.5, "limit": None, "is_free_tier": False}}
    return 404, {"error": {"message": "Not Found", "code": 404}}


@pytest.mark.asyncio
async def test_a_public_model_list_is_not_taken_as_proof_of_the_key(
    catalog: ModelCatalog, loopback: StartLoopback, sent: list[httpx.Request]
) -> None:
    server = loopback(openrouter_like)
    account = Account(provider_id="openrouter", label="Router", base_url=f"{server.base_url}/api/v1")

    good = await catalog.check(account, KEY)
    assert good.status is CheckStatus.OK, good.message
    assert good.models == ("anthropic/claude-sonnet-4.5", "openai/gpt-4o-mini")
    assert [s.path.split("?")[0] for s in server.seen] == ["/api/v1/key", "/api/v1/models"]
    assert_key_only_in_header(sent, "authorization", f"Bearer {KEY}")

    server.seen.clear()
    bad = await catalog.check(account, "sk-or-wrong")
    assert bad.status is CheckStatus.INVALID_KEY
    assert [s.path for s in server.seen] == ["/api/v1/key"]  # the public list proves nothing


@pytest.mark.asyncio
async def test_the_anthropic_organization_id_comes_back_from_a_check(catalog: ModelCatalog) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude work", base_url=server.base_url)
        result = await catalog.check(account, "sk-ant-test-a")
        other = await catalog.check(account, "sk-ant-test-b")

    assert result.status is CheckStatus.OK, result.message
    assert result.models == ("claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4-5")
    assert result.organization_id == organization_id("sk-ant-test-a")
    assert other.organization_id == organization_id("sk-ant-test-b") != result.organization_id


@pytest.mark.asyncio
async def test_an_openai_organization_header_is_returned_and_none_without_one(
    catalog: ModelCatalog, loopback: StartLoopback, server: FaultServer
) -> None:
    def with_org(_seen: Seen) -> tuple[Any, ...]:
        return 200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}, {"openai-organization": "org-lab42"}

    org_server = loopback(with_org)
    result = await catalog.check(compatible(org_server.base_url), KEY)
    assert (result.status, result.organization_id) == (CheckStatus.OK, "org-lab42")

    plain = await catalog.check(compatible(server.base_url), KEY)
    assert plain.organization_id is None


@pytest.mark.asyncio
async def test_model_names_lose_their_bidi_overrides(catalog: ModelCatalog, loopback: StartLoopback) -> None:
    def listing(_seen: Seen) -> tuple[Any, ...]:
        return 200, {
            "object": "list",
            "data": [{"id": "gpt-4o"}, {"id": "free-\u202egpj.exe"}, {"id": "\u2067mini\u2069"}],
        }

    result = await catalog.check(compatible(loopback(listing).base_url), KEY)
    assert result.models == ("free-gpj.exe", "gpt-4o", "mini")


ALNUM_KEY = "q8xk2mp4vr7ty1wz"  # a proxy's key: no prefix, lower case, so it fits a slug's shape
UUID_KEY = "0d0e7a3b-52f1-4c7e-9a51-3f6f2f7c1b9e"  # some gateways hand out UUIDs as keys


@pytest.mark.parametrize(
    ("key", "header", "value"),
    [
        (KEY, "openai-organization", KEY),
        (ALNUM_KEY, "openai-organization", ALNUM_KEY),  # the shape of an organisation name
        (ALNUM_KEY, "openai-organization", f"org-{ALNUM_KEY}"),  # the shape of an organisation id
        (ALNUM_KEY, "openai-organization", f"{ALNUM_KEY[:10]}"),  # a piece of it
        (KEY, "anthropic-organization-id", KEY),
        (KEY, "anthropic-organization-id", f"Bearer {KEY}"),
        (UUID_KEY, "anthropic-organization-id", UUID_KEY),  # the shape of an Anthropic organisation
    ],
)
@pytest.mark.asyncio
async def test_an_organisation_header_that_carries_the_key_is_never_kept_or_shown(
    accounts: AccountService,
    settings: SettingsService,
    loopback: StartLoopback,
    tmp_path: Path,
    key: str,
    header: str,
    value: str,
) -> None:
    def echo(_seen: Seen) -> tuple[Any, ...]:
        return 200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}, {header: value}

    server = loopback(echo)
    account = compatible(server.base_url)
    await accounts.save_account(account, key)
    result = await accounts.check(account)

    assert (result.status, result.organization_id) == (CheckStatus.OK, None)
    assert accounts.find(account.id).organization_id is None
    await settings.save()  # the write is queued: wait for it
    assert value not in (tmp_path / "settings.json").read_text("utf-8")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("openai-organization", "user-rl1mp5qrsyuposyh8rltuwfv"),
        ("openai-organization", "org-9PKnn7txwxhPDT"),
        ("openai-organization", "acme-research"),
        ("anthropic-organization-id", "0d0e7a3b-52f1-4c7e-9a51-3f6f2f7c1b9e"),
    ],
)
@pytest.mark.asyncio
async def test_an_organisation_in_its_documented_shape_is_kept(
    accounts: AccountService, loopback: StartLoopback, header: str, value: str
) -> None:
    def answer(_seen: Seen) -> tuple[Any, ...]:
        return 200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}, {header: value}

    account = compatible(loopback(answer).base_url)
    await accounts.save_account(account, KEY)
    assert (await accounts.check(account)).organization_id == value
    assert accounts.find(account.id).organization_id == value


def test_rate_limit_headers_of_a_chat_never_give_the_key_as_the_organisation() -> None:
    headers = {
        "llm_provider-anthropic-ratelimit-requests-remaining": "49",
        "llm_provider-anthropic-organization-id": UUID_KEY,
    }
    snapshot = parse_rate_limit_headers(headers, secret=UUID_KEY)
    assert snapshot is not None and snapshot.organization_id is None
    assert parse_rate_limit_headers(headers, secret="sk-other").organization_id == UUID_KEY


@pytest.mark.parametrize("value", ["sk-ant-api03-abcdefghijklmnop", "Organisation of Ann", "org-a b", "x" * 70])
def test_an_organisation_of_another_shape_is_dropped_when_settings_are_read(value: str) -> None:
    account = Account.model_validate({"provider_id": "anthropic", "label": "Claude", "organization_id": value})
    assert account.organization_id is None


def proxy_without_database(seen: Seen) -> tuple[int, Any]:
    """A LiteLLM Proxy with no DB: only the master key is known; any other key is "No connected db."."""
    if seen.headers.get("authorization") == f"Bearer {KEY}":
        return 200, {"object": "list", "data": [{"id": "gemma", "object": "model", "owned_by": "openai"}]}
    return 400, {"error": {"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"}}


@pytest.mark.asyncio
async def test_a_litellm_proxy_is_checked_on_its_model_list(catalog: ModelCatalog, loopback: StartLoopback) -> None:
    server = loopback(proxy_without_database)
    account = Account(provider_id="litellm_proxy", label="Gateway", base_url=f"{server.base_url}/v1")

    good = await catalog.check(account, KEY)
    assert (good.status, good.models) == (CheckStatus.OK, ("gemma",))
    assert server.seen[0].path == "/v1/models"
    bad = await catalog.check(account, "sk-not-the-master-key")
    assert bad.status is CheckStatus.INVALID_KEY, bad.message
