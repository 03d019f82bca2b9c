"""Azure OpenAI accounts against the strict loopback twin of a resource (tests/servers/azure_openai.py):
Check and the deployments list through the real catalog, chat through LiteLLM's real Azure adapter,
and a pool that fails over from one Azure account to another through the real Dispatcher."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, TextDelta, UsageReport
from desktop_app.domain.errors import AuthFailed, ModelNotFound, RateLimited
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.catalog import CheckStatus, ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from tests.servers.azure_openai import ACCESS_DENIED, AzureServer
from tests.unit.conftest import one_sentence
from tests.unit.sqlite_stores import store_fixtures

KEY = "azure-key-0123456789abcdef"
OTHER_KEY = "azure-key-fedcba9876543210"


@pytest.fixture
def server() -> Iterator[AzureServer]:
    with AzureServer(deployments={"gpt-4o": "ok", "busy": "fault-429", "mini": "ok"}) as srv:
        yield srv


def azure(server: AzureServer, label: str = "Azure, work", **fields) -> Account:
    return Account(provider_id="azure", label=label, base_url=server.endpoint, **fields)


# --- the twin is strict where Azure is ---------------------------------------------------------


@pytest.mark.asyncio
async def test_the_twin_answers_like_azure_to_a_missing_key_version_or_deployment(server):
    async with httpx.AsyncClient(base_url=server.endpoint, trust_env=False) as client:
        no_key = await client.get("/openai/models?api-version=2024-10-21")
        assert (no_key.status_code, no_key.json()["error"]["message"]) == (401, ACCESS_DENIED)
        headers = {"api-key": KEY}
        no_version = await client.get("/openai/models", headers=headers)
        assert no_version.status_code == 404 and no_version.json()["error"]["message"] == "Resource not found"
        for version in ("2024-10", "latest", "2023-01-01"):
            bad = await client.get(f"/openai/models?api-version={version}", headers=headers)
            assert (bad.status_code, bad.json()["error"]) == (
                400,
                {"code": "BadRequest", "message": "API version not supported"},
            )
        body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
        missing = await client.post(
            "/openai/deployments/nope/chat/completions?api-version=2024-10-21", headers=headers, json=body
        )
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "DeploymentNotFound"
        # The deployment names the model: a body without "model" is answered, as Azure answers it.
        deployment = next(iter(server.deployments))
        bare = await client.post(
            f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
            headers=headers,
            json={"messages": [{"role": "user", "content": "hi"}]},
        )
        assert bare.status_code == 200, bare.text


# --- Check and the model list -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_check_lists_the_deployments_with_the_key_in_its_header_only(http, cache_file, sent, server):
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    result = await catalog.check(azure(server, deployments=("typed-only",)), KEY)
    assert result.status is CheckStatus.OK, result.message
    assert result.models == ("busy", "gpt-4o", "mini", "typed-only")
    assert result.message == "OK: the key works and 4 deployments are available."
    assert [r.url.path for r in sent] == ["/openai/models", "/openai/deployments"]
    assert sent[0].url.params["api-version"] == "2024-10-21"  # the account's (default) version is proven
    assert all(r.headers["api-key"] == KEY and KEY not in str(r.url) for r in sent)
    assert "authorization" not in sent[0].headers


@pytest.mark.asyncio
async def test_a_resource_that_no_longer_lists_deployments_offers_the_typed_ones(http, cache_file, server):
    server.list_deployments = False  # 404, as resources answer the retired 2022-12-01 listing
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    result = await catalog.check(azure(server, deployments=("gpt-4o", "mini")), KEY)
    assert (result.status, result.models) == (CheckStatus.OK, ("gpt-4o", "mini"))
    nothing_typed = await catalog.check(azure(server), KEY)
    assert nothing_typed.status is CheckStatus.OK and nothing_typed.models == ()
    assert "add the names of your deployments" in nothing_typed.message


@pytest.mark.asyncio
async def test_check_says_plainly_what_is_wrong(http, cache_file, server):
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    wrong_key = await catalog.check(azure(server), OTHER_KEY)
    assert wrong_key.status is CheckStatus.INVALID_KEY
    old_version = await catalog.check(azure(server, api_version="2023-01-01"), KEY)
    assert old_version.status is CheckStatus.ERROR
    assert "does not support API version 2023-01-01" in old_version.message and one_sentence(old_version.message)
    no_key = await catalog.check(azure(server), None)
    assert no_key.status is CheckStatus.INVALID_KEY


def test_an_azure_account_needs_its_endpoint_and_a_well_formed_version():
    with pytest.raises(ValueError, match="needs its endpoint"):
        Account(provider_id="azure", label="Azure")
    with pytest.raises(ValueError, match="2024-10-21"):
        Account(provider_id="azure", label="Azure", base_url="https://x.openai.azure.com", api_version="24-10")
    with pytest.raises(ValueError, match="is not a deployment name"):
        Account(provider_id="azure", label="Azure", base_url="https://x.openai.azure.com", deployments=("a/b",))
    account = Account(
        provider_id="azure", label="Azure", base_url="https://x.openai.azure.com", deployments=(" a ", "a", "b")
    )
    assert account.deployments == ("a", "b") and account.azure_api_version == "2024-10-21"


def test_the_proxy_export_names_the_endpoint_and_api_version_never_the_key():
    from desktop_app.services.accounts.proxy_export import proxy_config

    account = Account(
        provider_id="azure", label="Azure", base_url="https://x.openai.azure.com", api_version="2025-04-01-preview"
    )
    config = proxy_config(Settings(accounts=[account]), {account.id: ("gpt-4o",)}, keyed=[account.id])
    assert config["model_list"][0]["litellm_params"] == {
        "model": "azure/gpt-4o",
        "api_key": "os.environ/MODELDESK_AZURE_KEY",
        "api_base": "https://x.openai.azure.com",
        "api_version": "2025-04-01-preview",
    }


# --- chat through LiteLLM's Azure adapter -------------------------------------------------------


async def _chat(llm: LLMService, account: Account, key: str, deployment: str) -> list:
    return [
        event
        async for event in llm.stream_chat(
            account=account,
            api_key=key,
            model=deployment,
            messages=[ChatMessage("user", "hi")],
            params=ChatParams(),
            timeout_s=10.0,
        )
    ]


@pytest.mark.asyncio
async def test_a_reply_streams_from_the_deployment_with_the_accounts_api_version(llm, server):
    events = await _chat(llm, azure(server, api_version="2025-04-01-preview"), KEY, "gpt-4o")
    assert isinstance(events[-1], Finished), events[-1]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "".join(f"word{i} " for i in range(40))
    usage = next(e for e in events if isinstance(e, UsageReport))
    assert usage.completion_tokens == 40
    chat_paths = [p for p in server.seen_paths if "/chat/completions" in p]
    assert chat_paths == ["/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview"]
    assert all(KEY not in p for p in server.seen_paths)


@pytest.mark.asyncio
async def test_chat_failures_become_the_usual_domain_errors(llm, server):
    account = azure(server)
    wrong_key = await _chat(llm, account, OTHER_KEY, "gpt-4o")
    assert isinstance(wrong_key[-1], Failed) and isinstance(wrong_key[-1].error, AuthFailed)
    assert OTHER_KEY not in wrong_key[-1].error.message
    limited = await _chat(llm, account, KEY, "busy")
    assert isinstance(limited[-1], Failed) and isinstance(limited[-1].error, RateLimited)
    assert limited[-1].error.retry_after == 7
    missing = await _chat(llm, account, KEY, "no-such-deployment")
    assert isinstance(missing[-1], Failed) and isinstance(missing[-1].error, ModelNotFound), missing[-1]


# --- pools ----------------------------------------------------------------------------------------

db_path, usage = store_fixtures(UsageStore, "usage.sqlite3", name="usage")


@pytest.mark.asyncio
async def test_a_pool_of_azure_accounts_fails_over_to_the_one_that_answers(engine, server, usage):
    broken = azure(server, "Azure, old key")
    working = azure(server, "Azure, new key")
    pool = Pool(
        label="Azure pool", provider_id="azure", account_ids=(broken.id, working.id), strategy=Strategy.FAILOVER
    )
    settings = Settings(accounts=[broken, working], pools=[pool])
    secrets = SecretStore()
    await secrets.set(broken.id, OTHER_KEY)  # rejected by the twin
    await secrets.set(working.id, KEY)
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: settings,
        usage=usage,
        timeout_s=lambda: 10.0,
    )
    events = [
        event
        async for event in dispatcher.stream(
            target_id=pool.id, model="gpt-4o", messages=[ChatMessage("user", "hi")], params=ChatParams()
        )
    ]
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert [f.account_id for f in failed] == [broken.id] and isinstance(failed[0].error, AuthFailed)
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_id == working.id
    statuses = sorted((r.account_id, r.status) for r in await usage.records(limit=10))
    assert statuses == sorted([(broken.id, "failed"), (working.id, "ok")])
    await secrets.close()
