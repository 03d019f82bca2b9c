"""What an account may hold is refused where it is typed: base URLs and extra headers that could
not be sent, framing headers, and credential headers outside the keyring."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from desktop_app.domain.accounts import Account
from desktop_app.domain.http_fields import check_base_url, check_header, check_key, is_credential_header
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts import header_secrets


def refusal(**fields) -> str:
    with pytest.raises(ValidationError) as caught:
        Account(provider_id="openai_compatible", label="Lab", **fields)
    return str(caught.value.errors()[0]["msg"]).removeprefix("Value error, ")


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("http://[::1", "an IPv6 address in the base URL needs both brackets, as in http://[::1]:8080"),
        ("http://::1]:8080", "an IPv6 address in the base URL needs both brackets, as in http://[::1]:8080"),
        ("http://[zz::1]:8080/v1", "“zz::1” in brackets is not an IPv6 address"),
        ("http://127.0.0.1:99999", "the port of the base URL must be a number from 1 to 65535"),
        ("http://127.0.0.1:0/v1", "the port of the base URL must be a number from 1 to 65535"),
        ("http://127.0.0.1:80a/v1", "the port of the base URL must be a number from 1 to 65535"),
        ("http:///v1", "the base URL needs a host name, as in http://127.0.0.1:8080"),
        ("http://exa mple.com", "the base URL must not contain spaces or control characters"),
        ("http://café.example", "the host name must be in ASCII (write an international name in its xn-- form)"),
        ("ftp://example.com", "the base URL must start with http:// or https://"),
        *(
            (
                url,
                "the base URL must not hold a user name or password: put the key in the key field "
                "(or a credential header), which ModelDesk keeps in the keyring",
            )
            for url in ("http://user:s3cret@127.0.0.1:11434", "https://token@api.example.com/v1", "http://@host:1")
        ),
    ],
)
def test_a_base_url_that_cannot_be_sent_to_is_refused_with_one_sentence(url, sentence):
    assert refusal(base_url=url) == sentence


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8080/v1",
        "https://api.example.com/v1/",
        "http://127.0.0.1:65535",
        "http://my_host.docker:11434",
        "http://xn--caf-dma.example/v1",
        "HTTP://LOCALHOST:1",
    ],
)
def test_good_base_urls_pass_as_typed(url):
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        (
            "X-Title",
            "Café",
            "the value of X-Title must be plain ASCII: HTTP sends header values as bytes, so "
            "percent-encode other characters (Café as Caf%C3%A9)",
        ),
        ("X-Title", "a\x00b", "the value of X-Title must be on one line"),
        ("X-Title", "a\x07b", "the value of X-Title must not contain control characters"),
        ("X Title", "x", "“X Title” is not a valid header name"),
        (
            "Transfer-Encoding",
            "chunked",
            "the Transfer-Encoding header is set by the HTTP client for each request; remove it",
        ),
        ("Connection", "close", "the Connection header is set by the HTTP client for each request; remove it"),
        ("Content-Length", "5", "the Content-Length header is set by the HTTP client for each request; remove it"),
        ("Authorization", "Bearer x", "the Authorization header is set by ModelDesk (put keys in the key field)"),
        ("Cookie", "session=1", "the Cookie header carries a credential, so it is kept in the keyring"),
    ],
)
def test_an_extra_header_that_cannot_or_must_not_be_sent_is_refused(name, value, sentence):
    assert refusal(extra_headers={name: value}) == sentence


@pytest.mark.parametrize(
    "name",
    [
        "api-key",
        "Proxy-Authorization",
        "Cookie",
        "X-Goog-Api-Key",
        "X-Auth-Token",
        "x-litellm-api-key",
        "Ocp-Apim-Subscription-Key",
    ],
)
def test_credential_headers_are_recognised(name):
    assert is_credential_header(name)


@pytest.mark.parametrize("name", ["X-Title", "HTTP-Referer", "anthropic-beta", "OpenAI-Organization"])
def test_ordinary_headers_are_not_credentials(name):
    assert not is_credential_header(name)


def test_header_values_are_trimmed_and_tabs_inside_are_allowed():
    assert check_header(" X-Title ", "  My\tApp ") == ("X-Title", "My\tApp")


@pytest.mark.parametrize("key", ["sk-te\nst", "sk-te st", "sk-tést"])
def test_a_key_that_cannot_be_sent_in_a_header_is_refused(key):
    with pytest.raises(ValueError, match="paste it again"):
        check_key(key)


def test_a_gemini_account_cannot_send_its_key_header_twice():
    with pytest.raises(ValidationError, match="X-Goog-Api-Key header is set by ModelDesk"):
        Account(provider_id="gemini", label="G", secret_headers=("X-Goog-Api-Key",))
    Account(provider_id="openai_compatible", label="Gateway", secret_headers=("X-Goog-Api-Key",))


@pytest.mark.asyncio
async def test_credential_header_values_go_to_the_keyring_never_to_the_settings_file(accounts, secrets, tmp_path):
    account = Account(
        provider_id="openai_compatible",
        label="Gateway",
        base_url="http://127.0.0.1:9/v1",
        extra_headers={"X-Title": "ModelDesk"},
        secret_headers=("Cookie", "api-key"),
    )
    await accounts.save_account(account, "sk-test", {"Cookie": "session=s3cret-cookie", "api-key": "az-s3cret"})
    on_disk = (tmp_path / "settings.json").read_text("utf-8")
    assert "s3cret" not in on_disk
    saved = json.loads(on_disk)["accounts"][0]
    assert saved["secret_headers"] == ["Cookie", "api-key"] and saved["extra_headers"] == {"X-Title": "ModelDesk"}
    sent = await accounts.resolved(account)
    assert sent.request_headers == {"X-Title": "ModelDesk", "Cookie": "session=s3cret-cookie", "api-key": "az-s3cret"}
    assert "s3cret" not in sent.model_dump_json() and "s3cret" not in repr(sent)
    assert "s3cret" not in Settings(accounts=[sent]).model_dump_json()

    # Saved again without new values (the form showed them masked): the stored ones are kept.
    await accounts.save_account(account.model_copy(update={"label": "Gateway 2"}))
    assert (await accounts.resolved(account)).request_headers["Cookie"] == "session=s3cret-cookie"
    # A header taken out of the list is forgotten; removing the account forgets the rest.
    await accounts.save_account(account.model_copy(update={"secret_headers": ("api-key",)}))
    assert await header_secrets.read(secrets, account.id) == {"api-key": "az-s3cret"}
    await accounts.remove_account(account.id)
    assert await header_secrets.read(secrets, account.id) == {}
