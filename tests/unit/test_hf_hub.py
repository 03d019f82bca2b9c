"""HubClient against the loopback Hub twin: search, a repo's details and files, headers by range,
and each refusal said in one sentence."""

from __future__ import annotations

import pytest

from desktop_app.domain.errors import DomainError
from desktop_app.domain.hub import GatedRepo, HubNotFound, HubSort
from tests.unit.hub_models import GATED, GEMMA, GEMMA_FILE, SMALL, SPLIT_PARTS, TOKEN, hub_with

pytestmark = pytest.mark.asyncio
pytest_plugins = ("tests.unit.hub_twin",)  # the twin, its files and the HTTP hub_http


def one_sentence(error: DomainError) -> None:
    assert error.message.endswith(".") and error.message.count(". ") == 0, error.message
    assert TOKEN not in error.message and TOKEN not in error.action


async def test_search_sorts_by_downloads_likes_and_recent(twin, hub_http):
    hub = hub_with(hub_http)
    by_downloads = await hub.search("GGUF")
    assert [repo.id for repo in by_downloads][:2] == [GEMMA, SMALL] or not any(r.id == GEMMA for r in by_downloads)
    by_likes = await hub.search("gguf", sort=HubSort.LIKES)
    assert by_likes[0].id == SMALL and by_likes[0].likes == 50 and by_likes[0].license == "mit"
    recent = await hub.search("gguf", sort=HubSort.RECENT)
    assert recent[0].id == SMALL
    gated = await hub.search("gated")
    assert [repo.id for repo in gated] == [GATED] and gated[0].is_gated
    request = next(r for r in twin.requests if r.path == "/api/models")
    assert "authorization" not in request.headers  # no token, none sent


async def test_repo_files_are_grouped_with_sizes_across_pages(twin, hub_http, model_files):
    hub = hub_with(hub_http)
    repo = await hub.repo(SMALL)
    assert (repo.license, repo.gated, repo.sha) == ("mit", False, twin.repos[SMALL].sha)
    quants = await hub.quant_files(SMALL, repo.sha)
    names = [quant.name for quant in quants]
    assert "README.md" not in names
    split = next(quant for quant in quants if quant.is_split)
    assert split.name == SPLIT_PARTS[0] and [p.path for p in split.parts] == list(SPLIT_PARTS)
    assert split.size == sum(model_files[name].stat().st_size for name in SPLIT_PARTS)
    assert split.quantisation == "Q2_K"
    assert {q.quantisation for q in quants} == {"Q2_K", "Q8_0", "Q4_K_M"}
    assert all(len(part.sha256) == 64 for quant in quants for part in quant.parts)
    # page_size is 2: five files took three pages, followed by their Link headers
    assert len([r for r in twin.requests if "/tree/" in r.path]) == 3


async def test_header_read_by_range_gives_the_shape(twin, hub_http, gemma):
    hub = hub_with(hub_http)
    quant = next(q for q in await hub.quant_files(GEMMA) if q.name == GEMMA_FILE)
    info, shape = await hub.read_header(GEMMA, quant)
    assert (info.architecture, info.quantisation, info.context_length) == ("gemma3", "Q4_K_M", 32768)
    assert shape is not None and (shape.layers, shape.kv_heads, shape.key_length) == (18, 1, 256)
    ranges = [r.headers.get("range") for r in twin.requests if r.path.startswith("/cdn/")]
    assert ranges and all(value and value.startswith("bytes=0-") for value in ranges)
    assert twin.body_bytes <= 16 * 1024 * 1024  # the header, never the 250 MB of weights


async def test_a_gated_repo_without_a_token_says_so(twin, hub_http):
    hub = hub_with(hub_http)
    repo = await hub.repo(GATED)  # the details are public
    assert repo.gated == "manual"
    quant = (await hub.quant_files(GATED))[0]
    with pytest.raises(GatedRepo) as caught:
        await hub.read_header(GATED, quant)
    one_sentence(caught.value)
    assert "token" in caught.value.message


async def test_a_gated_repo_with_a_token_without_access_says_so(twin, hub_http):
    hub = hub_with(hub_http, token="hf_" + "y" * 34)
    quant = (await hub.quant_files(GATED))[0]
    with pytest.raises(GatedRepo) as caught:
        await hub.read_header(GATED, quant)
    one_sentence(caught.value)
    assert "no access" in caught.value.message


async def test_a_gated_repo_with_a_granted_token_reads(twin, hub_http):
    hub = hub_with(hub_http, token=TOKEN)
    quant = (await hub.quant_files(GATED))[0]
    info, shape = await hub.read_header(GATED, quant)
    assert info.architecture == "llama" and shape is not None and shape.kv_heads == 2
    sent = [r for r in twin.requests if "/resolve/" in r.path]
    assert sent[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert all(TOKEN not in r.path for r in twin.requests)  # never in a URL


async def test_missing_repo_and_missing_file(twin, hub_http):
    hub = hub_with(hub_http)
    with pytest.raises(HubNotFound) as repo_missing:
        await hub.repo("nobody/nothing")
    one_sentence(repo_missing.value)
    quant = (await hub.quant_files(SMALL))[0]
    twin.repos[SMALL].files.pop(quant.parts[0].path)
    with pytest.raises(HubNotFound) as file_missing:
        await hub.read_header(SMALL, quant)
    one_sentence(file_missing.value)
    assert quant.parts[0].path in file_missing.value.message


async def test_an_unreachable_hub_is_one_sentence(hub_http, monkeypatch):
    from tests.servers.process import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DomainError) as caught:
        await hub_with(hub_http).search("gguf")
    one_sentence(caught.value)


async def test_the_token_is_a_hugging_face_account_in_the_keyring(twin, hub_http, accounts, secrets):
    from desktop_app.domain.accounts import Account
    from desktop_app.services.local.hf_hub import HubClient, token_from_accounts

    account = Account(provider_id="huggingface", label="My HF", base_url=twin.base_url)
    await accounts.save_account(account, TOKEN)
    check = await accounts.check(account)
    assert check.message == "OK: the token works." and check.models == ()
    hub = HubClient(hub_http, token=token_from_accounts(lambda: accounts.accounts, secrets))
    quant = (await hub.quant_files(GATED))[0]
    info, _shape = await hub.read_header(GATED, quant)
    assert info.architecture == "llama"
    await accounts.set_enabled(account.id, False)  # a disabled account lends no token
    with pytest.raises(GatedRepo):
        await hub.read_header(GATED, quant)


async def test_a_private_repo_needs_a_granted_token(twin, hub_http):
    twin.repo("tester/private-GGUF", private=True, granted={TOKEN})
    with pytest.raises(HubNotFound) as caught:
        await hub_with(hub_http).repo("tester/private-GGUF")
    one_sentence(caught.value)
    assert "private" in caught.value.message
    assert (await hub_with(hub_http, TOKEN).repo("tester/private-GGUF")).private
    assert "tester/private-GGUF" not in [repo.id for repo in await hub_with(hub_http).search("private")]
