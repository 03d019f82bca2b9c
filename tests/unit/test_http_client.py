"""The app's own HTTP client follows HTTPS_PROXY / NO_PROXY as LiteLLM does, never .netrc, and
reaches loopback directly; checked with a real CONNECT proxy and a TLS server on loopback."""

from __future__ import annotations

import datetime
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from desktop_app.domain.errors import DomainError
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.http_client import direct_to_loopback, http_client
from tests.servers.connect_proxy import ConnectProxy, TlsFront
from tests.servers.openai_fault import FaultServer
from tests.unit.conftest import compatible

# A name that no resolver knows (RFC 6761 .test): only the proxy can reach it.
API_HOST = "models.example.test"
PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def _self_signed(path: Path, host: str) -> Path:
    """A certificate for ``host`` that is its own CA, with its key, in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy settings from the machine; a HOME whose .netrc has credentials for every host used."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(
        "".join(
            f"machine {host} login netrc-user password netrc-secret\n"
            for host in (API_HOST, "127.0.0.1", "127.0.0.2", "localhost")
        )
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    return tmp_path


@pytest.fixture
def tls_api(proxy_env: Path) -> Iterator[tuple[FaultServer, TlsFront, Path]]:
    """The OpenAI-format server behind TLS for API_HOST; the certificate file to trust."""
    cert = _self_signed(proxy_env / "api.pem", API_HOST)
    with FaultServer() as server, TlsFront(server.port, cert) as front:
        yield server, front, cert


async def _list(base_url: str, cache: Path) -> tuple[str, ...]:
    async with http_client(follow_redirects=False) as http:
        catalog = ModelCatalog(http=http, cache_file=cache / "models.json")
        return await catalog.fetch_models(compatible(base_url), "sk-test")


@pytest.mark.asyncio
async def test_listing_goes_through_the_https_proxy_without_netrc_credentials(
    tls_api: tuple[FaultServer, TlsFront, Path], proxy_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, front, cert = tls_api
    with ConnectProxy({f"{API_HOST}:443": front.port}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # a proxy-side CA, as behind a corporate proxy

        models = await _list(f"https://{API_HOST}/v1", proxy_env)

    assert models
    assert [c.authority for c in proxy.connects] == [f"{API_HOST}:443"]
    assert "proxy-authorization" not in proxy.connects[0].headers
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer sk-test"]


@pytest.mark.asyncio
async def test_no_proxy_sends_a_host_direct(proxy_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.2 is loopback too, but not one of the names that always go direct.
    with FaultServer(host="127.0.0.2") as server, ConnectProxy({}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.2")

        assert await _list(server.base_url, proxy_env)

    assert proxy.connects == [] and proxy.other_requests == []
    assert "authorization" in server.requests[0].headers  # the key, not netrc's Basic credentials
    assert server.requests[0].headers["authorization"] == "Bearer sk-test"


@pytest.mark.asyncio
async def test_a_host_not_in_no_proxy_goes_to_the_proxy(proxy_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultServer(host="127.0.0.2") as server, ConnectProxy({}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.org")

        with pytest.raises(DomainError):
            await _list(server.base_url, proxy_env)

    assert proxy.other_requests == [f"GET {server.base_url}/models HTTP/1.1"]
    assert server.requests == []


@pytest.mark.asyncio
async def test_loopback_goes_direct_whatever_the_proxy_settings(
    proxy_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultServer() as server, ConnectProxy({}) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)

        assert await _list(server.base_url, proxy_env)
        assert await _list(server.base_url.replace("127.0.0.1", "localhost"), proxy_env)

    assert proxy.connects == [] and proxy.other_requests == []


def test_direct_to_loopback_leaves_an_environment_without_proxy_alone() -> None:
    env = {"NO_PROXY": "example.org"}
    direct_to_loopback(env)
    assert env == {"NO_PROXY": "example.org"}


def test_direct_to_loopback_makes_urllib_and_so_litellm_bypass_the_proxy() -> None:
    # LiteLLM decides per host with urllib's getproxies() and proxy_bypass().
    env = {"https_proxy": "http://proxy.corp:3128", "no_proxy": "intranet", "NO_PROXY": "x"}
    direct_to_loopback(env)
    assert env["no_proxy"] == "intranet,localhost,127.0.0.1,::1"
    assert env["NO_PROXY"] == "x,localhost,127.0.0.1,::1"
    proxies = {"https": env["https_proxy"], "no": env["no_proxy"]}
    for host in ("localhost", "127.0.0.1", "::1", "intranet"):
        assert urllib.request.proxy_bypass_environment(host, proxies), host
    assert not urllib.request.proxy_bypass_environment("api.openai.com", proxies)


def test_direct_to_loopback_keeps_a_wildcard_and_adds_nothing_twice() -> None:
    env = {"HTTP_PROXY": "http://proxy.corp:3128", "NO_PROXY": "*"}
    direct_to_loopback(env)
    assert env["NO_PROXY"] == "*"
    env = {"ALL_PROXY": "socks5://proxy.corp:1080", "NO_PROXY": "localhost,::1"}
    direct_to_loopback(env)
    direct_to_loopback(env)
    assert env["NO_PROXY"] == "localhost,::1,127.0.0.1"


def test_httpx_comes_without_its_command_line_tool_and_still_works() -> None:
    """httpx imports click, rich and pygments' lexers for its CLI when they are installed; not here."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import desktop_app.services.http_client\n"
        "import httpx\n"
        "assert httpx.AsyncClient and httpx.Timeout(1.0)\n"
        "print(sorted(name for name in ('click', 'rich', 'pygments', 'httpx._main') if sys.modules.get(name)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
