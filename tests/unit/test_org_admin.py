"""The organisation admin APIs against their loopback twins: reports across page boundaries, key
lists, disabling a key, and each refusal (wrong key, an ordinary key, rate limit, no server)
said in one sentence without the key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import AuthFailed, BadRequest, PermissionDenied, RateLimited, Unreachable
from desktop_app.domain.org_usage import hint_matches
from desktop_app.domain.usage import UsageRecord
from desktop_app.services.accounts.org_admin import AnthropicAdmin, OpenAIAdmin
from desktop_app.services.accounts.org_usage import OrgUsageService, entry_name
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.http_client import http_client
from tests.servers import anthropic_admin as ant
from tests.servers import openai_admin as oai
from tests.unit.conftest import one_sentence

TODAY = datetime.now(UTC).date()


@pytest.fixture
def anthropic() -> Iterator[ant.AnthropicAdminTwin]:
    with ant.AnthropicAdminTwin() as twin:
        twin.seed(TODAY)
        yield twin


@pytest.fixture
def openai() -> Iterator[oai.OpenAIAdminTwin]:
    with oai.OpenAIAdminTwin() as twin:
        twin.seed(TODAY)
        yield twin


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout=httpx.Timeout(5.0)) as client:
        yield client


def _anthropic(http: httpx.AsyncClient, twin: ant.AnthropicAdminTwin, key: str = ant.ADMIN_KEY) -> AnthropicAdmin:
    return AnthropicAdmin(http, base_url=twin.base_url, admin_key=key, label="Claude org")


def _openai(http: httpx.AsyncClient, twin: oai.OpenAIAdminTwin, key: str = oai.ADMIN_KEY) -> OpenAIAdmin:
    return OpenAIAdmin(http, base_url=twin.base_url, admin_key=key, label="OpenAI org")


@pytest.mark.asyncio
async def test_anthropic_usage_follows_next_page_across_the_bucket_limit(http, anthropic) -> None:
    start = TODAY - timedelta(days=39)  # 40 daily buckets: two pages of at most 31
    rows = await _anthropic(http, anthropic).usage(start, TODAY)
    report_calls = [r for r in anthropic.requests if r.path.endswith("/usage_report/messages")]
    assert len(report_calls) == 2
    assert {r.day for r in rows} == {(TODAY - timedelta(days=n)).isoformat() for n in range(7)}
    work_today = [r for r in rows if r.day == TODAY.isoformat() and r.key_id == "apikey_01Work"]
    assert [(r.scope_id, r.model, r.input_tokens, r.output_tokens) for r in work_today] == [
        ("wrkspc_01Research", "claude-sonnet-4-5", 14_000, 3_400)  # cache reads count as input
    ]
    first = report_calls[0].headers
    assert first["x-api-key"] == ant.ADMIN_KEY and first["anthropic-version"] == "2023-06-01"


@pytest.mark.asyncio
async def test_anthropic_costs_are_dollars_from_the_cents_string(http, anthropic) -> None:
    costs = await _anthropic(http, anthropic).costs(TODAY, TODAY)
    assert sorted((c.item, round(c.amount_usd, 4)) for c in costs) == [
        ("Claude Haiku 4.5 Usage - Input Tokens", 40.0),
        ("Claude Sonnet 4.5 Usage - Input Tokens", 42.0),
    ]


@pytest.mark.asyncio
async def test_anthropic_keys_page_by_after_id_and_disable_sets_inactive(http, anthropic) -> None:
    for n in range(120):  # more than one page of 100
        anthropic.add_key(f"apikey_extra{n:03}", f"extra {n}", f"sk-ant-api03-extra{n:03}-padding-padding-AAAA")
    client = _anthropic(http, anthropic)
    keys = await client.keys()
    assert len(keys) == 123 and len({k.id for k in keys}) == 123
    work = next(k for k in keys if k.id == "apikey_01Work")
    assert (work.name, work.scope_id, work.status, work.created) == (
        "Work laptop",
        "wrkspc_01Research",
        "active",
        "2025-02-11",
    )
    assert hint_matches(work.hint, ant.API_KEY_WORK) and not hint_matches(work.hint, ant.API_KEY_HOME)
    disabled = await client.disable_key(work)
    assert disabled.status == "inactive"
    assert anthropic.requests[-1].json() == {"status": "inactive"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "error", "words"),
    [
        ("sk-ant-admin01-wrong-key-00000000", AuthFailed, "did not accept the admin key"),
        (ant.API_KEY_WORK, PermissionDenied, "need an organisation admin key"),
    ],
)
async def test_anthropic_refusals_say_what_is_wrong_without_the_key(http, anthropic, key, error, words) -> None:
    with pytest.raises(error) as caught:
        await _anthropic(http, anthropic, key).check()
    assert words in caught.value.message and one_sentence(caught.value.message)
    assert key not in caught.value.message + caught.value.action


@pytest.mark.asyncio
async def test_a_rate_limit_and_a_missing_server_are_one_sentence_each(http, anthropic, unused_tcp_port) -> None:
    anthropic.rate_limited = 1
    with pytest.raises(RateLimited) as caught:
        await _anthropic(http, anthropic).usage(TODAY, TODAY)
    assert caught.value.retry_after == 7.0 and one_sentence(caught.value.message)
    gone = AnthropicAdmin(
        http, base_url=f"http://127.0.0.1:{unused_tcp_port}", admin_key=ant.ADMIN_KEY, label="Claude org"
    )
    with pytest.raises(Unreachable) as unreachable:
        await gone.check()
    assert "could not be reached" in unreachable.value.message


@pytest.mark.asyncio
async def test_the_twins_refuse_what_the_apis_refuse(http, anthropic, openai) -> None:
    plain = await http.get(f"{anthropic.base_url}/v1/organizations/api_keys", headers={"x-api-key": ant.ADMIN_KEY})
    assert plain.status_code == 400 and "anthropic-version" in plain.json()["error"]["message"]
    no_start = await http.get(
        f"{anthropic.base_url}/v1/organizations/usage_report/messages",
        headers={"x-api-key": ant.ADMIN_KEY, "anthropic-version": "2023-06-01"},
    )
    assert no_start.status_code == 400
    too_many = await http.get(
        f"{openai.base_url}/organization/costs",
        params={"start_time": 0, "limit": 181},
        headers={"authorization": f"Bearer {oai.ADMIN_KEY}"},
    )
    assert too_many.status_code == 400
    no_auth = await http.get(f"{openai.base_url}/organization/projects")
    assert no_auth.status_code == 401
    headers = {"x-api-key": ant.ADMIN_KEY, "anthropic-version": "2023-06-01"}
    bad_group = await http.get(
        f"{anthropic.base_url}/v1/organizations/cost_report",
        params={"starting_at": "2025-01-01T00:00:00Z", "group_by[]": "api_key_id"},  # costs have no per-key split
        headers=headers,
    )
    assert bad_group.status_code == 400 and bad_group.json()["type"] == "error"
    no_start_time = await http.get(
        f"{openai.base_url}/organization/usage/completions", headers={"authorization": f"Bearer {oai.ADMIN_KEY}"}
    )
    assert no_start_time.status_code == 400 and no_start_time.json()["error"]["param"] == "start_time"


@pytest.mark.asyncio
async def test_openai_usage_and_costs_page_and_carry_projects_and_keys(http, openai) -> None:
    client = _openai(http, openai)
    start = TODAY - timedelta(days=39)
    rows = await client.usage(start, TODAY)
    assert len([r for r in openai.requests if r.path.endswith("/usage/completions")]) == 2
    web = [r for r in rows if r.day == TODAY.isoformat() and r.key_id == "key_Web01"]
    assert [(r.scope_id, r.model, r.total_tokens, r.requests) for r in web] == [
        ("proj_Web01", "gpt-4o-mini-2024-07-18", 24_000, 40)
    ]
    costs = await client.costs(TODAY, TODAY)
    assert sorted(c.scope_id for c in costs) == ["proj_Batch02", "proj_Web01"]
    assert openai.requests[-1].headers["authorization"] == f"Bearer {oai.ADMIN_KEY}"


@pytest.mark.asyncio
async def test_openai_keys_come_from_every_project_and_cannot_be_switched_off(http, openai) -> None:
    client = _openai(http, openai)
    keys = await client.keys()
    assert sorted((k.scope_id, k.name) for k in keys) == [
        ("proj_Batch02", "batch runner"),
        ("proj_Web01", "website backend"),
    ]
    assert hint_matches(next(k for k in keys if k.id == "key_Web01").hint, oai.PROJECT_KEY_WEB)
    with pytest.raises(BadRequest) as caught:
        await client.disable_key(keys[0])
    assert "only delete it" in caught.value.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "error", "words"),
    [
        ("sk-admin-wrongwrongwrong000000", AuthFailed, "did not accept the admin key"),
        (oai.PROJECT_KEY_WEB, PermissionDenied, "need an organisation admin key"),
    ],
)
async def test_openai_refusals_say_what_is_wrong_without_the_key(http, openai, key, error, words) -> None:
    with pytest.raises(error) as caught:
        await _openai(http, openai, key).usage(TODAY, TODAY)
    assert words in caught.value.message and key not in caught.value.message + caught.value.action


# --- the service: admin keys in the keyring, provider beside ledger ----------------------------------


@pytest_asyncio.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[UsageStore]:
    store = UsageStore(tmp_path / "usage.sqlite3")
    await store.open()
    yield store
    await store.close()


@pytest.mark.asyncio
async def test_the_report_sets_provider_tokens_beside_the_ledger_of_the_account_using_the_key(
    http, anthropic, ledger, secrets: SecretStore
) -> None:
    work = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
    await secrets.set(work.id, ant.API_KEY_WORK)
    await ledger.record(
        UsageRecord(
            datetime.combine(TODAY, time(12), UTC).timestamp(),
            work.id,
            "anthropic/claude-sonnet-4-5",
            10_000,
            3_000,
            0.08,
            1.0,
            0.2,
            "ok",
            "",
        )
    )
    service = OrgUsageService(http=http, secrets=secrets, accounts=lambda: [work], usage=ledger)
    with pytest.raises(BadRequest):
        await service.set_admin_key(work, ant.API_KEY_WORK)  # an ordinary key is refused before it is stored
    await service.set_admin_key(work, ant.ADMIN_KEY)
    assert await secrets.get(entry_name(work.id)) == ant.ADMIN_KEY
    await service.check_admin_key(work)

    report = await service.report(days=7)
    assert report.problems == [] and report.admin_accounts == 1
    today = next(r for r in report.rows if r.key_id == "apikey_01Work" and r.day == TODAY.isoformat())
    assert today.account_ids == (work.id,) and today.key_name == "Work laptop"
    assert (today.provider_tokens, today.local_tokens, today.difference) == (17_400, 13_000, 4_400)
    ci = next(r for r in report.rows if r.key_id == "apikey_01Ci")
    assert ci.account_ids == () and ci.local_tokens == 0  # a key no account here uses: all of it is elsewhere
    listing = await service.keys()
    assert listing.used_by["apikey_01Work"] == (work.id,) and listing.used_by["apikey_01Home"] == ()


@pytest.mark.asyncio
async def test_a_failing_admin_call_is_one_problem_and_the_others_still_report(
    http, anthropic, openai, ledger, secrets
) -> None:
    claude = Account(provider_id="anthropic", label="Claude org", base_url=anthropic.base_url)
    gpt = Account(provider_id="openai", label="OpenAI org", base_url=openai.base_url)
    service = OrgUsageService(http=http, secrets=secrets, accounts=lambda: [claude, gpt], usage=ledger)
    await service.set_admin_key(claude, "sk-ant-admin01-revoked-key-000000")
    await service.set_admin_key(gpt, oai.ADMIN_KEY)
    report = await service.report(days=7)
    assert report.admin_accounts == 2 and len(report.problems) == 1
    assert "did not accept the admin key of “Claude org”" in report.problems[0]
    assert {r.provider_id for r in report.rows} == {"openai"}


@pytest.mark.asyncio
async def test_removing_an_account_forgets_its_admin_key(http, ledger, accounts, secrets) -> None:
    claude = Account(provider_id="anthropic", label="Claude org")
    await accounts.save_account(claude, ant.API_KEY_WORK)
    service = OrgUsageService(http=http, secrets=secrets, accounts=lambda: accounts.accounts, usage=ledger)
    await service.set_admin_key(claude, ant.ADMIN_KEY)
    assert await service.has_admin_key(claude.id)
    await accounts.remove_account(claude.id)
    assert await secrets.get(entry_name(claude.id)) is None
