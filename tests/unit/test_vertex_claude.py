"""Claude on Google Vertex AI against the strict loopback twin (tests/servers/vertex_anthropic.py):
the service account signs in at the twin's token endpoint with a throwaway RSA key (the twin checks
the JWT's signature), Check lists the publisher's Claude models, chat streams through LiteLLM's real
Vertex adapter, and a pool fails over from one Vertex account to another."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, TextDelta, UsageReport
from desktop_app.domain.errors import AuthFailed, BadRequest, RateLimited
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.providers import provider
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.catalog import CheckStatus, ModelCatalog
from desktop_app.services.accounts.cloud_auth import missing_extra
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from tests.servers.vertex_anthropic import VertexServer
from tests.unit.sqlite_stores import store_fixtures

MODEL = "claude-sonnet-4-5@20250929"
WORK = "modeldesk-ci@twin-project.iam.gserviceaccount.com"
HOME = "modeldesk-home@twin-project.iam.gserviceaccount.com"


@pytest.fixture
def twin() -> Iterator[VertexServer]:
    with VertexServer() as srv:
        yield srv


def vertex(twin: VertexServer, label: str = "Vertex, work", **fields) -> Account:
    return Account(
        provider_id="vertex", label=label, base_url=twin.endpoint, project="twin-project", location="us-east5", **fields
    )


@pytest.mark.asyncio
async def test_check_signs_in_with_the_service_account_and_lists_claude(http, cache_file, sent, twin):
    key = twin.service_account(WORK)
    result = await ModelCatalog(http=http, cache_file=cache_file).check(vertex(twin), key)
    assert result.status is CheckStatus.OK, result.message
    assert result.models == ("claude-haiku-4-5@20251001", "claude-opus-4-1@20250805", MODEL)
    [grant] = twin.grants
    assert grant["iss"] == WORK and grant["aud"] == "https://oauth2.googleapis.com/token"
    [listing] = sent
    assert listing.url.path == "/v1beta1/publishers/anthropic/models"
    assert listing.headers["authorization"].startswith("Bearer ya29.twin-")
    private_key = json.loads(key)["private_key"]
    assert all(private_key not in str(r.url) and private_key not in str(r.headers) for r in sent)


@pytest.mark.asyncio
async def test_a_key_the_twin_does_not_trust_or_a_file_that_is_no_key_is_said_plainly(http, cache_file, twin):
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    key = twin.service_account(WORK)
    twin.revoke(WORK)  # the key was deleted in the console: its signature no longer verifies
    refused = await catalog.check(vertex(twin), key)
    assert refused.status is CheckStatus.INVALID_KEY
    not_a_key = await catalog.check(vertex(twin), '{"type": "authorized_user"}')
    assert not_a_key.status is CheckStatus.ERROR and "not a service-account key" in not_a_key.message
    assert twin.predicted == []


def test_without_google_auth_the_sentence_names_the_pip_install(monkeypatch):
    assert missing_extra(provider("vertex")) is None
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if the extra were not installed
    assert missing_extra(provider("vertex")) == (
        "Google Vertex AI (Claude) needs an extra package: pip install 'modeldesk[vertex]'."
    )


def test_the_default_endpoint_follows_the_location():
    account = Account(provider_id="vertex", label="V", location="europe-west1")
    assert account.effective_base_url == "https://europe-west1-aiplatform.googleapis.com"
    assert Account(provider_id="vertex", label="V", location="global").effective_base_url == (
        "https://aiplatform.googleapis.com"
    )
    assert account.litellm_params == {"vertex_location": "europe-west1"}
    with pytest.raises(ValueError, match="Google Cloud region"):
        Account(provider_id="vertex", label="V", location="Europe West")


async def _chat(llm: LLMService, account: Account, key: str, model: str = MODEL) -> list:
    return [
        event
        async for event in llm.stream_chat(
            account=account,
            api_key=key,
            model=model,
            messages=[ChatMessage("user", "hi")],
            params=ChatParams(),
            timeout_s=10.0,
        )
    ]


@pytest.mark.asyncio
async def test_a_reply_streams_from_stream_raw_predict(llm, twin):
    events = await _chat(llm, vertex(twin), twin.service_account(WORK))
    assert isinstance(events[-1], Finished), events[-1]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(f"w{i} " for i in range(20))
    assert next(e for e in events if isinstance(e, UsageReport)).completion_tokens == 20
    assert twin.predicted == [
        f"/v1/projects/twin-project/locations/us-east5/publishers/anthropic/models/{MODEL}:streamRawPredict"
    ]


@pytest.mark.asyncio
async def test_chat_failures_become_the_usual_domain_errors(llm, twin):
    key = twin.service_account(WORK)
    twin.behaviour[WORK] = "429"
    limited = await _chat(llm, vertex(twin), key)
    assert isinstance(limited[-1], Failed) and isinstance(limited[-1].error, RateLimited)
    not_a_key = await _chat(llm, vertex(twin), "not json")
    assert isinstance(not_a_key[-1], Failed) and isinstance(not_a_key[-1].error, BadRequest)
    assert "not JSON" in not_a_key[-1].error.message


db_path, usage = store_fixtures(UsageStore, "usage.sqlite3", name="usage")


@pytest.mark.asyncio
async def test_a_pool_of_vertex_accounts_fails_over_to_the_one_that_answers(engine, twin, usage):
    busy, spare = vertex(twin, "Vertex, work"), vertex(twin, "Vertex, home")
    pool = Pool(label="Vertex pool", provider_id="vertex", account_ids=(busy.id, spare.id), strategy=Strategy.FAILOVER)
    settings = Settings(accounts=[busy, spare], pools=[pool])
    secrets = SecretStore()
    await secrets.set(busy.id, twin.service_account(WORK))
    await secrets.set(spare.id, twin.service_account(HOME))
    twin.behaviour[WORK] = "401"
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
            target_id=pool.id, model=MODEL, messages=[ChatMessage("user", "hi")], params=ChatParams()
        )
    ]
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert [f.account_id for f in failed] == [busy.id] and isinstance(failed[0].error, AuthFailed)
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_id == spare.id
    await secrets.close()
