"""One loopback address for the Anthropic Messages twin and the Admin API twin, as api.anthropic.com
serves both: each request is answered, refused and recorded by the twin its path belongs to."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import anthropic_admin as ant
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.shared_host import SharedHost

KEY = "sk-ant-test-a"
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture
def twins() -> Iterator[tuple[SharedHost, AnthropicServer, ant.AnthropicAdminTwin]]:
    messages, admin = AnthropicServer(valid_keys={KEY}), ant.AnthropicAdminTwin()
    with SharedHost(messages, {"/v1/organizations/": admin}) as host:
        yield host, messages, admin


def test_both_apis_answer_on_one_address_and_each_twin_records_its_own(twins) -> None:
    host, messages, admin = twins
    assert messages.base_url == admin.base_url == host.base_url
    with httpx.Client(base_url=host.base_url, headers=VERSION, timeout=10) as client:
        models = client.get("/v1/models", headers={"x-api-key": KEY})
        keys = client.get("/v1/organizations/api_keys", headers={"x-api-key": ant.ADMIN_KEY})
    assert models.status_code == 200 and models.json()["data"][0]["type"] == "model"
    assert keys.status_code == 200 and keys.json()["data"] == []
    assert [r.path for r in messages.requests] == ["/v1/models"]
    assert [r.path for r in admin.requests] == ["/v1/organizations/api_keys"]
    assert [r.path for r in host.requests] == ["/v1/models", "/v1/organizations/api_keys"]
    assert len({r.connection for r in host.requests}) == 1  # one keep-alive connection for both


def test_each_twin_keeps_its_own_refusals(twins) -> None:
    host, messages, admin = twins
    with httpx.Client(base_url=host.base_url, headers=VERSION, timeout=10) as client:
        admin_key_on_messages = client.get("/v1/models", headers={"x-api-key": ant.ADMIN_KEY})
        api_key_on_admin = client.get("/v1/organizations/api_keys", headers={"x-api-key": KEY})
        admin.rate_limited = 1
        limited = client.get("/v1/organizations/cost_report", headers={"x-api-key": ant.ADMIN_KEY})
    assert admin_key_on_messages.status_code == 401 and "request-id" in admin_key_on_messages.headers
    assert api_key_on_admin.status_code == 401 and "request-id" not in api_key_on_admin.headers
    assert api_key_on_admin.json()["error"]["type"] == "authentication_error"
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert messages.counts == {ant.ADMIN_KEY: 1}  # the admin calls never reached the messages twin


def test_malformed_http_is_answered_as_the_default_twin_answers_it(twins) -> None:
    host, _messages, _admin = twins
    with socket.create_connection((host.host, host.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/organizations/api_keys HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 505 ") and b'"invalid_request_error"' in reply and b"request-id" in reply
