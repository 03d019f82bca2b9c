"""Every way a chat request can fail ends in a domain error with a true sentence.

Real LiteLLM on its engine thread, against the loopback servers. The accounts with a broken base
URL, key or header can no longer be saved (see test_account_input.py); they are built here past
validation, as an older settings file or a keyring entry could still hold them.
"""

from __future__ import annotations

import logging

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatMessage, ChatParams, Failed, Finished, StreamEvent, TextDelta
from desktop_app.domain.errors import AuthFailed, BadRequest
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.errors import map_error
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.litellm_proxy_nodb import MASTER_KEY, ProxyWithoutDatabase

HELLO = [ChatMessage("user", "Say hello to the test suite")]


def unchecked(provider_id: str, base_url: str, headers: dict[str, str] | None = None) -> Account:
    """An account as a file could hold it, without the checks a Save makes."""
    return Account.model_construct(
        id="a1",
        provider_id=provider_id,
        label="Lab",
        base_url=base_url,
        colour="",
        extra_headers=headers or {},
        enabled=True,
        organization_id=None,
        daily_budget_tokens=None,
        daily_budget_usd=None,
    )


async def failure(llm: LLMService, account: Account, key: str, model: str) -> tuple[list[StreamEvent], Failed]:
    events = [
        event
        async for event in llm.stream_chat(
            account=account, api_key=key, model=model, messages=HELLO, params=ChatParams()
        )
    ]
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1, f"the stream ended without saying why: {events}"
    assert not any(isinstance(e, Finished) for e in events)
    return events, failed[0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://[::1", "an IPv6 address in the base URL needs both brackets, as in http://[::1]:8080."),
        ("http://127.0.0.1:99999/v1", "the port of the base URL must be a number from 1 to 65535."),
    ],
)
@pytest.mark.parametrize("provider_id", ["openai_compatible", "anthropic"])
async def test_a_base_url_that_is_no_address_says_so_and_nothing_was_sent(llm, caplog, provider_id, base_url, why):
    caplog.set_level(logging.INFO, logger="desktop_app")
    _events, failed = await failure(llm, unchecked(provider_id, base_url), "sk-test", "ok")
    assert isinstance(failed.error, BadRequest)
    assert failed.error.message == f"Nothing was sent to account “Lab”: {why}"
    assert "HTTP 500" not in failed.error.message
    assert any("chat request not sent: BadRequest" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_key_with_a_line_break_is_not_called_a_connection_failure(llm):
    with AnthropicServer() as server:
        _events, failed = await failure(
            llm, unchecked("anthropic", server.base_url), "sk-ant-te\nst", "claude-sonnet-4-5"
        )
        assert server.requests == []  # nothing reached the server
    assert isinstance(failed.error, BadRequest)
    assert failed.error.message == (
        "Nothing was sent to account “Lab”: the key must be one line without spaces; paste it again."
    )


@pytest.mark.asyncio
async def test_a_non_ascii_header_value_is_named(llm, server):
    account = unchecked("openai_compatible", server.base_url, {"X-Title": "Café"})
    _events, failed = await failure(llm, account, "sk-test", "ok")
    assert isinstance(failed.error, BadRequest)
    assert failed.error.message == (
        "Nothing was sent to account “Lab”: the value of X-Title must be plain ASCII: "
        "HTTP sends header values as bytes, so percent-encode other characters (Café "
        "as Caf%C3%A9)."
    )


@pytest.mark.asyncio
async def test_an_auth_error_inside_the_stream_is_an_auth_error(llm, server):
    events, failed = await failure(llm, unchecked("openai_compatible", server.base_url), "sk-test", "fault-stream-401")
    assert any(isinstance(e, TextDelta) for e in events)  # the text before it is kept
    assert isinstance(failed.error, AuthFailed)
    assert failed.error.message == "The provider rejected the key of account “Lab”."


@pytest.mark.asyncio
async def test_a_litellm_proxy_refusing_a_key_says_so_in_chat_as_check_does(llm, accounts):
    with ProxyWithoutDatabase() as proxy:
        account = Account(provider_id="litellm_proxy", label="Gateway", base_url=proxy.base_url)
        await accounts.save_account(account, "sk-not-the-master")
        checked = await accounts.check(account)
        _events, failed = await failure(llm, account, "sk-not-the-master", "ok")
        # With the master key the same proxy answers: the refusal was about the key.
        answered = [
            e
            async for e in llm.stream_chat(
                account=account, api_key=MASTER_KEY, model="ok", messages=HELLO, params=ChatParams()
            )
        ]
    assert checked.status.value == "invalid key"
    assert isinstance(failed.error, AuthFailed)
    assert "refused the request as invalid" not in failed.error.message
    assert failed.error.message == (
        f"{proxy.host}:{proxy.port} accepts only its master key (this LiteLLM "
        "Proxy has no database), so it rejected the key of account “Gateway”."
    )
    assert isinstance(answered[-1], Finished)


@pytest.mark.parametrize(
    ("cause", "sentence"),
    [
        (
            ValueError("Invalid IPv6 URL"),
            "Nothing was sent to account “Lab”: an IPv6 address in the base URL needs both brackets, as in "
            "http://[::1]:8080.",
        ),
        (
            ValueError("Forbidden control character detected in headers. Potential header injection attack."),
            "Nothing was sent to account “Lab”: the key or an extra header contains a line break or another control "
            "character.",
        ),
    ],
)
def test_the_error_mapping_never_raises_on_a_broken_base_url(cause, sentence):
    # What LiteLLM raised for http://[::1 (an APIConnectionError around the stdlib's ValueError): the
    # mapping itself used to raise on that URL, so the chat ended as "Stopped" with nothing said.
    wrapper = RuntimeError("APIConnectionError: OpenAIException")
    wrapper.__cause__ = cause
    error = map_error(wrapper, account_label="Lab", model="ok", base_url="http://[::1")
    assert isinstance(error, BadRequest) and error.message == sentence
