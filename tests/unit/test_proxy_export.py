"""The LiteLLM Proxy export: loaded into LiteLLM's Router, started by the real LiteLLM Proxy, and a
proxy key's spend."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    MalformedResponse,
    NoKey,
    ServerError,
)
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.routes import Route, RouteTarget
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import NO_SPEND_RECORDS, KeySpend, ModelCatalog
from desktop_app.services.accounts.proxy_export import (
    KEYLESS_PLACEHOLDER,
    env_var_names,
    env_vars_to_set,
    export_proxy_config,
    proxy_config,
    write_proxy_config,
)
from tests.servers.litellm_proxy import LiteLLMProxy
from tests.servers.llama import LlamaServer
from tests.servers.openai_fault import FaultServer

KEY = "sk-test"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"  # the name LiteLLM's own docs give users
MESSAGES = [{"role": "user", "content": "Say hello."}]


@dataclass(frozen=True)
class Lab:
    first: Account
    second: Account
    pool: Pool
    settings: Settings
    models: dict[str, list[str]]


def make_lab(base_url: str, strategy: Strategy = Strategy.FAILOVER) -> Lab:
    first = Account(
        provider_id="openai_compatible", label="Lab (first)", base_url=base_url, extra_headers={"X-Team": "first"}
    )
    second = Account(provider_id="openai_compatible", label="Lab second", base_url=base_url)
    pool = Pool(label="Lab pool", provider_id="openai_compatible", account_ids=(first.id, second.id), strategy=strategy)
    return Lab(
        first, second, pool, Settings(accounts=[first, second], pools=[pool]), {first.id: ["ok"], second.id: ["ok"]}
    )


def load_like_the_proxy(text: str) -> dict[str, Any]:
    import yaml

    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def router_for(config: dict[str, Any]) -> Any:
    import litellm

    return litellm.Router(model_list=config["model_list"], **config.get("router_settings", {}))


def deployments(config: dict[str, Any], model_name: str) -> list[dict[str, Any]]:
    return [d for d in config["model_list"] if d["model_name"] == model_name]


async def ask_exported_lab(
    base_url: str, monkeypatch: pytest.MonkeyPatch, model: str, *, first_key: str = KEY
) -> tuple[Lab, Any]:
    """Export the lab (both keys stored), load it into LiteLLM's Router with the keys in the
    environment, and ask `model` once; returns the lab and the Router's response."""
    lab = make_lab(base_url)
    config = load_like_the_proxy(export_proxy_config(lab.settings, lab.models, keyed={lab.first.id, lab.second.id}))
    names = env_var_names(lab.settings)
    monkeypatch.setenv(names[lab.first.id], first_key)
    monkeypatch.setenv(names[lab.second.id], KEY)
    return lab, await router_for(config).acompletion(model=model, messages=MESSAGES)


# --- env var names ---------------------------------------------------------------------------------


def test_env_var_names_are_upper_snake_unique_and_stable() -> None:
    labels = ["Claude (work)", "claude work", "Claude-work", "Ünïcode Lab", "!!!", "Local 2"]
    accounts = [Account(provider_id="anthropic", label=label) for label in labels]
    names = env_var_names(Settings(accounts=accounts))

    assert [names[a.id] for a in accounts] == [
        "MODELDESK_CLAUDE_WORK_KEY",
        "MODELDESK_CLAUDE_WORK_2_KEY",
        "MODELDESK_CLAUDE_WORK_3_KEY",
        "MODELDESK_UNICODE_LAB_KEY",
        "MODELDESK_ACCOUNT_KEY",
        "MODELDESK_LOCAL_2_KEY",
    ]
    # Disabling an account renames nobody.
    disabled = Settings(accounts=[accounts[0].model_copy(update={"enabled": False}), *accounts[1:]])
    assert env_var_names(disabled) == names


# --- the config's shape ----------------------------------------------------------------------------


def test_the_export_names_env_vars_and_never_holds_a_key(server: FaultServer) -> None:
    lab = make_lab(server.base_url)
    text = export_proxy_config(lab.settings, lab.models, keyed={lab.first.id, lab.second.id})

    assert KEY not in text
    names = env_var_names(lab.settings)
    assert names == {lab.first.id: "MODELDESK_LAB_FIRST_KEY", lab.second.id: "MODELDESK_LAB_SECOND_KEY"}
    assert text.startswith("# LiteLLM Proxy config written by ModelDesk.")
    for name in names.values():
        assert f"#   {name}  " in text  # the header tells the user what to set
        assert f"api_key: os.environ/{name}" in text

    config = load_like_the_proxy(text)
    pooled = deployments(config, "lab-pool/ok")
    assert [d["litellm_params"]["order"] for d in pooled] == [1, 2]  # failover: pool order
    assert [d["litellm_params"]["api_key"] for d in pooled] == [
        "os.environ/MODELDESK_LAB_FIRST_KEY",
        "os.environ/MODELDESK_LAB_SECOND_KEY",
    ]
    assert {d["litellm_params"]["model"] for d in pooled} == {"openai/ok"}
    assert {d["litellm_params"]["api_base"] for d in pooled} == {server.base_url}
    assert pooled[0]["litellm_params"]["extra_headers"] == {"X-Team": "first"}
    assert "extra_headers" not in pooled[1]["litellm_params"]
    # Both accounts offer "ok": each keeps a name of its own rather than forming an unasked-for pool.
    assert [d["model_info"]["id"] for d in deployments(config, "lab-first/ok")] == [f"{lab.first.id}-ok"]
    assert [d["model_info"]["id"] for d in deployments(config, "lab-second/ok")] == [f"{lab.second.id}-ok"]
    ids = [d["model_info"]["id"] for d in config["model_list"]]
    assert len(ids) == len(set(ids)) == 4
    # LiteLLM Proxy 1.106+ will not start without a master key; it too comes from the environment.
    assert config["general_settings"] == {"master_key": f"os.environ/{MASTER_KEY_ENV}"}
    assert text.splitlines()[2].startswith(f"#   {MASTER_KEY_ENV}  (the proxy's master key")
    assert config["router_settings"] == {
        "routing_strategy": "simple-shuffle",
        "num_retries": 2,
        "allowed_fails": 1,
        "cooldown_time": 60,
    }


def test_round_robin_pools_have_no_order_and_disabled_accounts_are_left_out(server: FaultServer) -> None:
    lab = make_lab(server.base_url, Strategy.ROUND_ROBIN)
    third = Account(provider_id="openai_compatible", label="Off", base_url=server.base_url, enabled=False)
    settings = lab.settings.with_account(third).with_pool(
        lab.pool.model_copy(update={"account_ids": (*lab.pool.account_ids, third.id)})
    )
    config = load_like_the_proxy(export_proxy_config(settings, {**lab.models, third.id: ["ok"]}))

    pooled = deployments(config, "lab-pool/ok")
    assert len(pooled) == 2 and not [d for d in pooled if "order" in d["litellm_params"]]
    assert not [d for d in config["model_list"] if third.id in d["model_info"]["id"]]


def test_keys_base_urls_and_model_names_per_provider() -> None:
    claude = Account(provider_id="anthropic", label="Claude")
    relay = Account(provider_id="anthropic", label="Claude relay", base_url="https://relay.example/anthropic")
    local = Account(provider_id="llamacpp", label="Local")
    ollama = Account(provider_id="ollama", label="Ollama")
    settings = Settings(accounts=[claude, relay, local, ollama])
    models = {
        claude.id: ["claude-sonnet-4-5", "claude-haiku-4-5"],
        relay.id: ["claude-opus-4-1"],
        local.id: ["gemma"],
        ollama.id: ["llama3.2:latest"],
    }
    config = load_like_the_proxy(export_proxy_config(settings, models))  # default: key_required ones

    by_name = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    assert set(by_name) == {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gemma", "llama3.2:latest"}
    assert by_name["claude-sonnet-4-5"] == {
        "model": "anthropic/claude-sonnet-4-5",
        "api_key": "os.environ/MODELDESK_CLAUDE_KEY",
    }
    assert by_name["claude-opus-4-1"]["api_base"] == "https://relay.example/anthropic"
    assert by_name["gemma"] == {
        "model": "openai/gemma",
        "api_key": KEYLESS_PLACEHOLDER,
        "api_base": "http://127.0.0.1:8080/v1",
    }
    assert by_name["llama3.2:latest"] == {"model": "ollama_chat/llama3.2:latest", "api_base": "http://127.0.0.1:11434"}
    assert "router_settings" not in config  # no pools

    # An account with no key stored gets no api_key at all.
    unkeyed = load_like_the_proxy(export_proxy_config(settings, models, keyed=set()))
    assert not [d for d in unkeyed["model_list"] if str(d["litellm_params"].get("api_key", "")).startswith("os.")]


# --- loaded into LiteLLM's Router, a real request to the loopback server -------------------------------


@pytest.mark.asyncio
async def test_the_pool_routes_a_real_request_with_the_key_from_the_environment(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, response = await ask_exported_lab(server.base_url, monkeypatch, "lab-pool/ok")

    assert response.choices[0].message.content.startswith("word0 word1")
    assert response._hidden_params["model_id"] == f"pool-{lab.pool.id.removeprefix('pool:')}-{lab.first.id}-ok"
    (received,) = server.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["x-team"] == "first"  # the account's extra headers travel too
    assert set(received.body) == {"model", "messages"}  # `order` is the Router's, never sent on
    assert received.body["model"] == "ok"


@pytest.mark.asyncio
async def test_a_failover_pool_moves_on_when_the_first_account_is_refused(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, response = await ask_exported_lab(server.base_url, monkeypatch, "lab-pool/ok", first_key="sk-revoked")

    assert response._hidden_params["model_id"].endswith(f"-{lab.second.id}-ok")
    keys = [r.headers["authorization"] for r in server.requests]
    assert keys[0] == "Bearer sk-revoked" and keys[-1] == f"Bearer {KEY}"
    assert "x-team" not in server.requests[-1].headers


@pytest.mark.asyncio
async def test_an_accounts_own_name_reaches_only_that_account(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, response = await ask_exported_lab(server.base_url, monkeypatch, "lab-second/ok")

    assert response._hidden_params["model_id"] == f"{lab.second.id}-ok"
    assert "x-team" not in server.requests[0].headers


@pytest.mark.asyncio
@pytest.mark.parametrize("failing", ["fault-500", "fault-context"])
async def test_a_route_falls_back_to_its_next_target_in_the_router(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    lab = make_lab(server.base_url)
    route = Route(
        label="Fast lane",
        targets=(RouteTarget(target_id=lab.second.id, model=failing), RouteTarget(target_id=lab.pool.id, model="ok")),
    )
    settings = lab.settings.with_route(route)
    config = load_like_the_proxy(export_proxy_config(settings, lab.models, keyed={lab.first.id, lab.second.id}))
    short = route.id.removeprefix("route:")
    assert [d["model_info"]["id"] for d in deployments(config, "fast-lane")] == [f"route-{short}-1-{lab.second.id}"]
    assert [d["litellm_params"]["order"] for d in deployments(config, "fast-lane/2-ok")] == [1, 2]
    router_settings = config["router_settings"]
    assert router_settings["fallbacks"] == [{"fast-lane": ["fast-lane/2-ok"]}]
    assert router_settings["context_window_fallbacks"] == router_settings["fallbacks"]
    names = env_var_names(settings)
    monkeypatch.setenv(names[lab.first.id], KEY)
    monkeypatch.setenv(names[lab.second.id], KEY)

    response = await router_for(config).acompletion(model="fast-lane", messages=MESSAGES)

    assert response._hidden_params["model_id"] == f"route-{short}-2-{lab.first.id}"
    asked = [r.body["model"] for r in server.requests]
    assert asked[0] == failing and asked[-1] == "ok"


# --- started by the real LiteLLM Proxy, a real request to the real llama-server ----------------------

LLAMA_KEY = "sk-llama-test"
MASTER_KEY = "sk-modeldesk-proxy-test"


@pytest.fixture
def keyed_llama() -> Iterator[LlamaServer]:
    """The real llama-server, refusing every request without LLAMA_KEY."""
    with LlamaServer(extra_args=("--api-key", LLAMA_KEY)) as server:
        yield server


@pytest.mark.asyncio
async def test_the_exported_file_starts_a_real_litellm_proxy_that_routes_to_llama_server(
    accounts: AccountService, keyed_llama: LlamaServer, tmp_path: Path
) -> None:
    first = Account(provider_id="openai_compatible", label="Lab first", base_url=f"{keyed_llama.base_url}/v1")
    second = Account(provider_id="openai_compatible", label="Lab second", base_url=f"{keyed_llama.base_url}/v1")
    pool = Pool(label="Lab pool", provider_id="openai_compatible", account_ids=(first.id, second.id))
    for account in (first, second):
        await accounts.save_account(account, LLAMA_KEY)
        assert await accounts.refresh_models(account.id) == ("gemma",)
    await accounts.save_pool(pool)
    exported = tmp_path / "proxy" / "config.yaml"

    to_set = await accounts.export_proxy_config(exported)

    assert to_set == [MASTER_KEY_ENV, "MODELDESK_LAB_FIRST_KEY", "MODELDESK_LAB_SECOND_KEY"]
    assert LLAMA_KEY not in exported.read_text("utf-8")
    # The proxy gets exactly the variables the user is told to set, and nothing else of ours.
    env = {name: MASTER_KEY if name == MASTER_KEY_ENV else LLAMA_KEY for name in to_set}
    proxy = await asyncio.to_thread(LiteLLMProxy(exported, env).start)
    try:
        async with httpx.AsyncClient(base_url=proxy.base_url, trust_env=False, timeout=60) as client:
            ask = {"model": "lab-pool/gemma", "messages": MESSAGES, "max_tokens": 4}
            refused = await client.post("/v1/chat/completions", json=ask)
            answered = await client.post(
                "/v1/chat/completions", json=ask, headers={"Authorization": f"Bearer {MASTER_KEY}"}
            )
    finally:
        await asyncio.to_thread(proxy.stop)

    assert refused.status_code == 401, refused.text
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-litellm-model-id"] == f"pool-{pool.id.removeprefix('pool:')}-{first.id}-gemma"
    assert answered.json()["usage"]["completion_tokens"] > 0  # llama-server generated, with the key


# --- writing the file ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_config_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "proxy" / "config.yaml"
    await write_proxy_config(target, "model_list: []\n")
    await write_proxy_config(target, "model_list: [] # again\n")

    assert target.read_text("utf-8") == "model_list: [] # again\n"
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]  # no temp file left


# --- a LiteLLM Proxy key's spend -------------------------------------------------------------------

Answer = tuple[int, Any]


class KeyInfoServer:
    """/key/info as a LiteLLM Proxy answers it; `answer` decides, every request is recorded."""

    def __init__(self, answer: Callable[[dict[str, str]], Answer]) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append((self.path, headers))
                status, payload = (
                    answer(headers) if self.path.split("?")[0] == "/key/info" else (404, {"detail": "Not Found"})
                )
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="key-info", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def key_info() -> Iterator[Callable[[Callable[[dict[str, str]], Answer]], KeyInfoServer]]:
    started: list[KeyInfoServer] = []

    def start(answer: Callable[[dict[str, str]], Answer]) -> KeyInfoServer:
        started.append(KeyInfoServer(answer))
        return started[-1]

    yield start
    for srv in started:
        srv.close()


def proxy_account(root: str) -> Account:
    return Account(provider_id="litellm_proxy", label="Gateway", base_url=f"{root}/v1")


def with_database(headers: dict[str, str]) -> Answer:
    if headers.get("authorization") != f"Bearer {KEY}":
        return 401, {
            "error": {
                "message": "Authentication Error, Invalid proxy server token passed.",
                "type": "auth_error",
                "param": "None",
                "code": "401",
            }
        }
    return 200, {
        "key": KEY,
        "info": {
            "key_name": "sk-...test",
            "key_alias": "modeldesk",
            "spend": 1.25,
            "max_budget": 10.0,
            "models": ["gemma", "claude-sonnet-4-5"],
            "budget_duration": "30d",
            "budget_reset_at": "2026-12-01T00:00:00Z",
            "tpm_limit": None,
            "rpm_limit": None,
            "status": "active",
        },
    }


def without_database(headers: dict[str, str]) -> Answer:
    # What a proxy with no DB answers for its master key (see reference/real-servers.md).
    return 500, {
        "error": {
            "message": "Database not connected. Connect a database to your proxy - "
            "https://docs.litellm.ai/docs/simple_proxy#managing-auth---virtual-keys",
            "type": "internal_server_error",
            "param": "None",
            "code": "500",
        }
    }


@pytest.mark.asyncio
async def test_a_proxy_keys_spend_is_read_with_the_key_in_the_header(catalog: ModelCatalog, key_info: Any) -> None:
    server = key_info(with_database)
    spend = await catalog.key_spend(proxy_account(server.root), KEY)

    assert spend == KeySpend(
        spend=1.25,
        max_budget=10.0,
        models=("gemma", "claude-sonnet-4-5"),
        key_alias="modeldesk",
        budget_reset_at="2026-12-01T00:00:00Z",
    )
    assert spend.remaining == pytest.approx(8.75)
    assert KEY not in repr(spend)  # the proxy echoes the key back; it is not kept
    ((path, headers),) = server.seen
    assert path == "/key/info"  # beside /v1, and never ?key=...
    assert headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.asyncio
async def test_a_proxy_without_a_database_keeps_no_spend_records(catalog: ModelCatalog, key_info: Any) -> None:
    server = key_info(without_database)
    with pytest.raises(ServerError) as caught:
        await catalog.key_spend(proxy_account(server.root), KEY)

    assert str(caught.value) == NO_SPEND_RECORDS == "This LiteLLM Proxy keeps no spend records (it has no database)."
    assert caught.value.status == 500


@pytest.mark.asyncio
async def test_a_non_master_key_on_a_proxy_without_a_database_says_the_same(
    catalog: ModelCatalog, key_info: Any
) -> None:
    server = key_info(
        lambda _h: (
            400,
            {"error": {"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"}},
        )
    )
    with pytest.raises(ServerError, match="keeps no spend records"):
        await catalog.key_spend(proxy_account(server.root), "sk-virtual")


@pytest.mark.asyncio
async def test_a_rejected_key_and_odd_answers_are_said_plainly(catalog: ModelCatalog, key_info: Any) -> None:
    server = key_info(with_database)
    with pytest.raises(AuthFailed) as caught:
        await catalog.key_spend(proxy_account(server.root), "sk-wrong")
    assert "sk-wrong" not in str(caught.value)

    odd = key_info(lambda _h: (200, {"key": KEY, "info": {"spend": "a lot"}}))
    with pytest.raises(MalformedResponse):
        await catalog.key_spend(proxy_account(odd.root), KEY)


@pytest.mark.asyncio
async def test_spend_needs_a_proxy_account_and_a_key(catalog: ModelCatalog, key_info: Any) -> None:
    server = key_info(with_database)
    with pytest.raises(NoKey):
        await catalog.key_spend(proxy_account(server.root), None)
    with pytest.raises(BadRequest):
        await catalog.key_spend(Account(provider_id="anthropic", label="Claude"), KEY)
    assert server.seen == []


def test_the_proxy_export_reads_vertex_and_bedrock_secrets_from_their_own_variables():
    vertex = Account(provider_id="vertex", label="Vertex", project="my-project-1")
    bedrock = Account(provider_id="bedrock", label="Bedrock", region="eu-central-1")
    settings = Settings(accounts=[vertex, bedrock])
    models = {vertex.id: ("claude-sonnet-4-5@20250929",), bedrock.id: ("anthropic.claude-sonnet-4-5-20250929-v1:0",)}
    config = proxy_config(settings, models, keyed=[vertex.id, bedrock.id])
    by_model = {d["litellm_params"]["model"]: d["litellm_params"] for d in config["model_list"]}
    assert by_model["vertex_ai/claude-sonnet-4-5@20250929"] == {
        "model": "vertex_ai/claude-sonnet-4-5@20250929",
        "vertex_credentials": "os.environ/MODELDESK_VERTEX_KEY",
        "vertex_location": "us-east5",
        "vertex_project": "my-project-1",
    }
    assert by_model["bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"] == {
        "model": "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
        "aws_access_key_id": "os.environ/MODELDESK_BEDROCK_AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "os.environ/MODELDESK_BEDROCK_AWS_SECRET_ACCESS_KEY",
        "aws_region_name": "eu-central-1",
    }
    assert list(env_vars_to_set(settings, config))[1:] == [
        "MODELDESK_VERTEX_KEY",
        "MODELDESK_BEDROCK_AWS_ACCESS_KEY_ID",
        "MODELDESK_BEDROCK_AWS_SECRET_ACCESS_KEY",
    ]

    # Temporary credentials: the session token goes with them, from a variable of its own.
    temporary = proxy_config(settings, models, keyed=[vertex.id, bedrock.id], session_tokens=[bedrock.id])
    [deployment] = [
        d["litellm_params"] for d in temporary["model_list"] if d["litellm_params"]["model"].startswith("bedrock/")
    ]
    assert deployment["aws_session_token"] == "os.environ/MODELDESK_BEDROCK_AWS_SESSION_TOKEN"
    assert env_vars_to_set(settings, temporary)["MODELDESK_BEDROCK_AWS_SESSION_TOKEN"] == (
        "the AWS session token of account “Bedrock”"
    )


def test_a_context_too_long_falls_back_only_to_targets_with_a_larger_window() -> None:
    lab = make_lab("http://127.0.0.1:9/v1")
    route = Route(
        label="Long reads",
        targets=(
            RouteTarget(target_id=lab.first.id, model="small-8k"),
            RouteTarget(target_id=lab.second.id, model="tiny-4k"),
            RouteTarget(target_id=lab.second.id, model="big-128k"),
            RouteTarget(target_id=lab.first.id, model="unknown"),
        ),
    )
    settings = lab.settings.with_route(route)
    windows = {
        (lab.first.id, "small-8k"): 8_192,
        (lab.second.id, "tiny-4k"): 4_096,
        (lab.second.id, "big-128k"): 131_072,
        (lab.first.id, "unknown"): None,
    }
    config = proxy_config(settings, lab.models, keyed={lab.first.id, lab.second.id}, windows=windows)
    router_settings = config["router_settings"]
    assert router_settings["fallbacks"] == [
        {"long-reads": ["long-reads/2-tiny-4k", "long-reads/3-big-128k", "long-reads/4-unknown"]}
    ]
    # The 4K model cannot take what the 8K one could not; one whose window is not known is tried.
    assert router_settings["context_window_fallbacks"] == [
        {"long-reads": ["long-reads/3-big-128k", "long-reads/4-unknown"]}
    ]

    smaller_only = {**windows, (lab.second.id, "big-128k"): 2_048, (lab.first.id, "unknown"): 1_024}
    config = proxy_config(settings, lab.models, keyed={lab.first.id, lab.second.id}, windows=smaller_only)
    assert "context_window_fallbacks" not in config["router_settings"]
