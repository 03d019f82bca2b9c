"""Amazon Bedrock accounts against the strict loopback twin (tests/servers/bedrock_runtime.py): Check
signs ListFoundationModels with SigV4, chat streams ConverseStream's binary event stream through
LiteLLM's real Bedrock adapter (botocore decodes it), a named AWS profile signs too, and a pool fails
over from a throttled Bedrock account to another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import AttemptFailed, ChatMessage, ChatParams, Failed, Finished, TextDelta, UsageReport
from desktop_app.domain.cloud_secrets import aws_credentials
from desktop_app.domain.errors import NoKey, RateLimited
from desktop_app.domain.pools import Pool, Strategy
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.catalog import CheckStatus, ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from tests.servers.bedrock_runtime import BedrockServer, event_message
from tests.unit.sqlite_stores import store_fixtures

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
KEY_ID, OTHER_ID = "AKIATWINEXAMPLE00001", "AKIATWINEXAMPLE00002"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTWINSECRET"


@pytest.fixture
def twin() -> Iterator[BedrockServer]:
    with BedrockServer(valid_keys={KEY_ID, OTHER_ID}) as srv:
        yield srv


def bedrock(twin: BedrockServer, label: str = "Bedrock, work", **fields) -> Account:
    return Account(provider_id="bedrock", label=label, base_url=twin.endpoint, **{"region": "us-east-1", **fields})


def test_event_stream_messages_are_what_botocore_reads():
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    [message] = list(buffer)  # botocore checks both CRCs and the lengths
    assert message.headers[":event-type"] == "contentBlockDelta"
    assert message.payload == b'{"contentBlockIndex":0,"delta":{"text":"hi"}}'


@pytest.mark.asyncio
async def test_check_signs_the_model_list_with_sigv4(http, cache_file, sent, twin):
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    result = await catalog.check(bedrock(twin), aws_credentials(KEY_ID, SECRET))
    assert result.status is CheckStatus.OK, result.message
    assert MODEL in result.models
    [request] = sent
    assert request.url.path == "/foundation-models"
    assert request.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert SECRET not in str(request.headers) and SECRET not in str(request.url)
    unknown = await catalog.check(bedrock(twin), aws_credentials("AKIAUNKNOWN000000000", SECRET))
    assert unknown.status is CheckStatus.INVALID_KEY
    wrong_region = await catalog.check(bedrock(twin, region="eu-central-1"), aws_credentials(KEY_ID, SECRET))
    assert wrong_region.status is CheckStatus.INVALID_KEY
    nothing = await catalog.check(bedrock(twin), None)
    assert nothing.status is CheckStatus.ERROR and "neither AWS keys nor an AWS profile" in nothing.message


@pytest.mark.asyncio
async def test_a_named_profile_signs_instead_of_stored_keys(http, cache_file, twin, tmp_path, monkeypatch):
    (tmp_path / "credentials").write_text(f"[work]\naws_access_key_id = {OTHER_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    result = await catalog.check(bedrock(twin, aws_profile="work"), None)
    assert result.status is CheckStatus.OK, result.message
    assert twin.seen[-1][1:] == (OTHER_ID, "us-east-1")
    missing = await catalog.check(bedrock(twin, aws_profile="nope"), None)
    assert missing.status is CheckStatus.ERROR and "no AWS profile named “nope”" in missing.message


async def _chat(llm: LLMService, account: Account, key: str | None) -> list:
    return [
        event
        async for event in llm.stream_chat(
            account=account,
            api_key=key,
            model=MODEL,
            messages=[ChatMessage("user", "hi")],
            params=ChatParams(),
            timeout_s=10.0,
        )
    ]


@pytest.mark.asyncio
async def test_a_reply_streams_from_converse_stream(llm, twin):
    events = await _chat(llm, bedrock(twin), aws_credentials(KEY_ID, SECRET, "session-token-of-the-twin"))
    assert isinstance(events[-1], Finished), events[-1]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(f"b{i} " for i in range(12))
    assert next(e for e in events if isinstance(e, UsageReport)).completion_tokens == 12
    assert twin.seen == [("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream", KEY_ID, "us-east-1")]


@pytest.mark.asyncio
async def test_a_reply_signed_by_a_named_profile(llm, twin, tmp_path, monkeypatch):
    (tmp_path / "credentials").write_text(f"[work]\naws_access_key_id = {OTHER_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    events = await _chat(llm, bedrock(twin, aws_profile="work"), None)
    assert isinstance(events[-1], Finished), events[-1]
    assert [seen[1] for seen in twin.seen] == [OTHER_ID]


@pytest.mark.asyncio
async def test_throttling_and_missing_credentials_are_said_plainly(llm, twin):
    twin.behaviour[KEY_ID] = "429"
    limited = await _chat(llm, bedrock(twin), aws_credentials(KEY_ID, SECRET))
    assert isinstance(limited[-1], Failed) and isinstance(limited[-1].error, RateLimited), limited[-1]
    nothing = await _chat(llm, bedrock(twin), None)
    assert isinstance(nothing[-1], Failed) and isinstance(nothing[-1].error, NoKey)
    assert len(twin.seen) == 1  # the account without credentials sent nothing


db_path, usage = store_fixtures(UsageStore, "usage.sqlite3", name="usage")


@pytest.mark.asyncio
async def test_a_pool_of_bedrock_accounts_fails_over_when_one_is_throttled(engine, twin, usage):
    busy, spare = bedrock(twin, "Bedrock, work"), bedrock(twin, "Bedrock, home")
    pool = Pool(
        label="Bedrock pool", provider_id="bedrock", account_ids=(busy.id, spare.id), strategy=Strategy.FAILOVER
    )
    settings = Settings(accounts=[busy, spare], pools=[pool])
    secrets = SecretStore()
    await secrets.set(busy.id, aws_credentials(KEY_ID, SECRET))
    await secrets.set(spare.id, aws_credentials(OTHER_ID, SECRET))
    twin.behaviour[KEY_ID] = "429"
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
    assert [f.account_id for f in failed] == [busy.id] and isinstance(failed[0].error, RateLimited)
    assert isinstance(events[-1], Finished) and events[-1].metrics.account_id == spare.id
    await secrets.close()
