"""The one server-address normaliser and "same server?" comparison (domain/urls.py)."""

from __future__ import annotations

import pytest

from desktop_app.domain.urls import same_server, server_root
from desktop_app.services.local.llamacpp import normalise_url
from desktop_app.services.local.llamacpp_accounts import _base_url
from desktop_app.services.local.ollama_hosts import same_url


@pytest.mark.parametrize(
    ("typed", "root"),
    [
        ("localhost:8080/v1/", "http://localhost:8080"),
        ("  http://127.0.0.1:8080/  ", "http://127.0.0.1:8080"),
        ("https://box.example/llama/v1", "https://box.example/llama"),
        ("http://[::1]:8080//", "http://[::1]:8080"),
    ],
)
def test_server_root_is_the_address_every_endpoint_hangs_off(typed, root):
    assert server_root(typed) == root
    assert normalise_url(typed) == root  # llama.cpp's name for the same normaliser
    assert _base_url(typed) == f"{root}/v1"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://localhost:8080", "http://127.0.0.1:8080"),
        ("http://0.0.0.0:8080", "http://127.0.0.1:8080/v1"),  # a server bound to every interface
        ("http://[::1]:8080/", "http://localhost:8080"),
        ("http://[::]:8080", "http://127.0.0.1:8080"),
        ("HTTP://LocalHost:8080/v1/", "http://127.0.0.1:8080"),
        ("http://example.com", "http://example.com:80/"),
        ("https://example.com/", "https://example.com:443"),
        ("localhost:8080", "http://127.0.0.1:8080"),
        ("https://box.example/ollama/", "https://box.example/ollama"),
    ],
)
def test_one_server_under_two_addresses(a, b):
    assert same_server(a, b)
    assert same_server(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8081"),
        ("http://127.0.0.1:8080", "https://127.0.0.1:8080"),
        ("http://10.0.0.5:8080", "http://127.0.0.1:8080"),  # another machine is no loopback
        ("http://0.0.0.0:8080", "http://10.0.0.5:8080"),
        ("https://box.example/ollama", "https://box.example/other"),  # two servers behind one proxy
        ("http://example.com", "http://example.com:8080"),
    ],
)
def test_two_servers(a, b):
    assert not same_server(a, b)


def test_an_unreadable_address_is_compared_as_text_and_never_raises():
    assert same_server("http://[::1", "http://[::1/")
    assert not same_server("http://[::1", "http://127.0.0.1")
    assert not same_server("http://host:port", "http://host:80")


def test_ollama_addresses_as_typed_take_ollamas_port_then_compare_alike():
    assert same_url("localhost", "http://127.0.0.1:11434")
    assert same_url("0.0.0.0:11434", "127.0.0.1")
    assert not same_url("localhost:11435", "127.0.0.1")
