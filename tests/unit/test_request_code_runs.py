"""The "View as code" snippets for real: a reply goes through the app's stack to a loopback server,
its stored request is turned into snippets, and each snippet is run (LiteLLM and SDK Python in a
subprocess, curl in bash) against the same server, which must receive the same body and headers."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.attachments import image_limits
from desktop_app.domain.chat import ChatParams, Failed, Finished
from desktop_app.domain.cloud_secrets import aws_credentials
from desktop_app.domain.errors import BadRequest
from desktop_app.domain.request_code import URL_PASSWORD_VAR, header_env_var, key_env_var, request_snippets
from desktop_app.domain.request_wire import reads_attachments, resolve_files, wire_body
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts import header_secrets
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.azure_openai import AzureServer
from tests.servers.bedrock_runtime import BedrockServer
from tests.servers.llama import LlamaServer
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fault import FaultServer
from tests.servers.vertex_anthropic import CLOUD_PLATFORM, VertexServer
from tests.unit.test_attachments import minimal_pdf, png

# Text that has to survive Python and shell quoting on its way into the snippets.
TRICKY = 'It\'s "quoted", $HOME and `date`; a \\ backslash,\nnew line, tab\t, café, 日本, \u202eevil\u202c 🙂'
SESSION_TOKEN = "tok-'\"$(rm -rf ~)`x`"  # a credential header's value: only its variable may show
URL_PASSWORD = "s3cret-pw"  # the password of a base URL's user info
ROOT = Path(__file__).resolve().parents[2]


def _skip_unless_runnable(run: str) -> None:
    """Skip a run ("Anthropic SDK", or "LiteLLM and curl") whose program this machine lacks."""
    if run == "Anthropic SDK" and not _runs_python_with("anthropic"):
        pytest.skip("the anthropic package is not installed, so its snippet cannot be run")
    if run != "Anthropic SDK" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")


def _runs_python_with(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


async def _send(
    server: Any,
    account: Account,
    key: str,
    model: str,
    params: ChatParams,
    tmp_path: Path,
    *,
    fails: bool = False,
    attachments_dir: Path | None = None,
) -> Any:
    """A turn with history through the real ChatService; the reply's request as read after a restart.
    `fails`: the server cannot answer; one message is sent and its failed reply still keeps its request.
    `attachments_dir`: the first message carries an image, a text file and a PDF, kept there."""
    secrets = SecretStore()
    if key:
        await secrets.set(account.id, key)
    await header_secrets.write(secrets, account.id, {"X-Session-Token": SESSION_TOKEN})
    engine = LiteLLMEngine()
    engine.start()
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    try:
        dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=AccountStates(),
            settings=lambda: Settings(accounts=[account]),
            timeout_s=lambda: 30.0,
        )
        files = AttachmentStore(attachments_dir) if attachments_dir is not None else None
        chat = ChatService(dispatcher=dispatcher, store=store, attachments=files)
        conversation = await store.create_conversation(
            title=DEFAULT_TITLE, account_id=account.id, model=model, params=params
        )
        attached = ()
        if files is not None:
            limits = image_limits(account.provider_id)
            attached = (
                await files.add_bytes(png(24, 16, alpha=True), 'it\'s a "dot".png', limits),
                await files.add_bytes(TRICKY.encode(), "notes $HOME.md", limits),
                await files.add_bytes(minimal_pdf("Quarterly figures"), "report.pdf", limits),
            )
        for text in ("First question", TRICKY)[int(fails) :]:
            events = [e async for e in chat.reply(conversation, text, attachments=attached)]
            attached = ()
            assert isinstance(events[-1], Failed if fails else Finished), events[-1]
    finally:
        await store.close()
        engine.stop()
        await secrets.close()
    for file in path.parent.glob("conversations.sqlite3*"):  # the database, its WAL...: no credential
        data = file.read_bytes()
        assert SESSION_TOKEN.encode() not in data and URL_PASSWORD.encode() not in data, file
        assert not key or key.encode() not in data, file
    reopened = ConversationStore(path)  # as after a restart
    await reopened.open()
    try:
        reply = (await reopened.messages(conversation.id))[-1]
    finally:
        await reopened.close()
    assert reply.role == "assistant" and reply.request is not None
    return reply.request


def _run(
    snippet_language: str,
    text: str,
    env_var: str,
    key: str,
    *,
    answered: bool = True,
    credentials: dict[str, str] | None = None,
) -> None:
    """`credentials`: the variables a cloud's snippets sign with, instead of `env_var` holding `key`."""
    env = {
        **os.environ,
        **(credentials if credentials is not None else {env_var: key}),
        header_env_var("X-Session-Token"): SESSION_TOKEN,
        URL_PASSWORD_VAR: URL_PASSWORD,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if snippet_language == "python":
        command = [sys.executable, "-c", text]
    else:
        command = ["bash", "-c", text]
    # errors="replace": curl prints Bedrock's binary event stream as it comes.
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, errors="replace", timeout=120, cwd=ROOT, check=False
    )
    if answered:
        assert done.returncode == 0, f"{snippet_language} snippet failed:\n{done.stderr}\n---\n{text}"


def _check_snippets(
    server: Any,
    request: SentRequest,
    key: str,
    sent_headers: set[str],
    *,
    not_run: tuple[str, ...] = (),
    answered: bool = True,
    attachments_dir: Path | None = None,
    credentials: dict[str, str] | None = None,
) -> None:
    """Run each snippet but those `not_run`; the server must get the body (and the headers named) the app sent.
    `attachments_dir`: where the snippets read attached files (given to them, not in the environment).
    `credentials`: the environment a cloud's snippets sign with (see `_run`)."""
    app_request = server.requests[-1]
    app_body = app_request.json()
    # The stored record says exactly what went out (attached files kept by digest, read back here).
    body = resolve_files(
        wire_body(request), lambda name: (attachments_dir or Path("/nowhere")).joinpath(name).read_bytes()
    )
    assert body == app_body
    snippets = request_snippets(request, None if attachments_dir is None else str(attachments_dir))
    for snippet in snippets:
        assert SESSION_TOKEN not in snippet.text and URL_PASSWORD not in snippet.text
        assert not key or key not in snippet.text
        if snippet.title in not_run:
            continue
        before = len(server.requests)
        env_var = key_env_var(request.provider_id)
        _run(snippet.language, snippet.text, env_var, key, answered=answered, credentials=credentials)
        # One request to the endpoint the app asked (LiteLLM may look the model up first, as it did for the app).
        [received] = [r for r in server.requests[before:] if r.path == app_request.path]
        assert received.json() == app_body, snippet.title
        for name in sent_headers:
            assert received.headers.get(name) == app_request.headers.get(name), (snippet.title, name)


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.mark.asyncio
async def test_the_snippets_of_an_openai_compatible_reply_send_what_the_app_sent(
    openai_server: FaultServer, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    account = Account(
        provider_id="openai_compatible",
        label="Lab",
        base_url=openai_server.base_url,
        extra_headers={"X-Team": "it's $team"},
        secret_headers=("X-Session-Token",),
    )
    params = ChatParams(
        system_prompt=TRICKY,
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        stop=("END", "$HOME", "`x`"),
        seed=7,
        response_format="json_object",
    )
    request = await _send(openai_server, account, "sk-test", "ok", params, tmp_path)

    assert request.params == {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["END", "$HOME", "`x`"],
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    assert request.messages[0] == {"role": "system", "content": TRICKY}
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "OpenAI SDK", "curl"]
    _check_snippets(openai_server, request, "sk-test", {"authorization", "x-team", "x-session-token"})


@pytest.mark.asyncio
@pytest.mark.parametrize("run", ["LiteLLM and curl", "Anthropic SDK"])
async def test_the_snippets_of_an_anthropic_reply_send_what_the_app_sent(tmp_path: Path, run: str) -> None:
    _skip_unless_runnable(run)
    with AnthropicServer() as server:
        account = Account(
            provider_id="anthropic",
            label="Claude",
            base_url=server.base_url,
            extra_headers={"X-Team": "it's $team"},
            secret_headers=("X-Session-Token",),
        )
        # LiteLLM sends no JSON-object format to Anthropic: the snippets must not either.
        params = ChatParams(
            system_prompt=TRICKY, temperature=0.3, top_p=0.9, stop=("END", "$HOME"), response_format="json_object"
        )
        key = "sk-ant-test-a"
        request = await _send(server, account, key, "claude-sonnet-4-5", params, tmp_path)

        # Anthropic requires max_tokens: LiteLLM's default for the model is sent, and recorded.
        assert set(request.params) == {"temperature", "top_p", "stop", "max_tokens", "response_format"}
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "Anthropic SDK", "curl"]
        not_run = ("LiteLLM", "curl") if run == "Anthropic SDK" else ("Anthropic SDK",)
        headers = {"x-api-key", "x-team", "x-session-token", "anthropic-version"}
        _check_snippets(server, request, key, headers, not_run=not_run)


@pytest.mark.asyncio
async def test_the_snippets_of_an_ollama_reply_send_what_the_app_sent(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with OllamaServer(installed=("gemma3:270m",)) as server:
        account = Account(
            provider_id="ollama",
            label="Ollama",
            base_url=server.base_url,
            extra_headers={"X-Team": "it's $team"},
            secret_headers=("X-Session-Token",),
        )
        params = ChatParams(system_prompt=TRICKY, temperature=0.3, top_p=0.9, max_tokens=50, stop=("END",), seed=7)
        request = await _send(server, account, "", "gemma3:270m", params, tmp_path)

        assert request.key_sent is False
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "OpenAI SDK", "curl"]
        # The OpenAI SDK snippet asks Ollama's /v1 endpoint, which this loopback server does not serve.
        _check_snippets(server, request, "", {"authorization", "x-team", "x-session-token"}, not_run=("OpenAI SDK",))


@pytest.mark.asyncio
async def test_the_curl_snippet_of_a_gemini_request_sends_what_the_app_sent(
    openai_server: FaultServer, tmp_path: Path
) -> None:
    """No loopback Gemini here: the OpenAI one records the request (and answers it 404, so the reply
    fails), which is enough to compare what the app and the snippets sent."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    account = Account(
        provider_id="gemini",
        label="Gemini",
        base_url=openai_server.base_url.removesuffix("/v1"),
        extra_headers={"X-Team": "it's $team"},
        secret_headers=("X-Session-Token",),
    )
    params = ChatParams(system_prompt=TRICKY, temperature=0.3, top_p=0.9, max_tokens=50, stop=("END",), seed=7)
    request = await _send(openai_server, account, "AIza-test", "gemini-2.5-flash", params, tmp_path, fails=True)

    assert openai_server.requests[-1].path == "/models/gemini-2.5-flash:streamGenerateContent"
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "curl"]
    headers = {"x-goog-api-key", "x-team", "x-session-token"}
    _check_snippets(openai_server, request, "AIza-test", headers, answered=False)


@pytest.mark.asyncio
async def test_a_base_url_holding_a_password_is_refused_before_anything_is_sent_or_stored(
    openai_server: FaultServer, tmp_path: Path
) -> None:
    # The account form and the settings file refuse such a URL (check_base_url). An account that
    # skipped them is refused again before dispatch, so the password never reaches a request, a
    # snippet or the store (`without_url_password` guards the record too: test_request_code.py).
    base_url = openai_server.base_url.replace("://", f"://bob:{URL_PASSWORD}@")
    account = Account.model_construct(
        **{**Account(provider_id="openai_compatible", label="Lab").model_dump(), "base_url": base_url}
    )
    with pytest.raises(BadRequest, match="must not hold a user name or password"):
        await _send(openai_server, account, "sk-test", "ok", ChatParams(), tmp_path, fails=True)
    assert not [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    for file in tmp_path.glob("conversations.sqlite3*"):
        assert URL_PASSWORD.encode() not in file.read_bytes(), file


def _last_task(server: LlamaServer) -> dict[str, Any]:
    """The slot that ran the latest request: its sampling parameters and prompt length, as parsed."""
    slot = max((s for s in server.slots() if "id_task" in s), key=lambda s: s["id_task"])
    return {"params": slot["params"], "n_prompt_tokens": slot["n_prompt_tokens"], "id_task": slot["id_task"]}


@pytest.mark.asyncio
async def test_the_snippets_of_a_llama_server_reply_are_read_by_it_as_the_apps_request(tmp_path: Path) -> None:
    """A real llama-server: what it parsed from each snippet's request (every sampling parameter, the
    prompt's length) is what it parsed from the app's."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with LlamaServer() as server:
        account = Account(provider_id="llamacpp", label="Gemma", base_url=f"{server.base_url}/v1")
        params = ChatParams(system_prompt=TRICKY, temperature=0.3, top_p=0.9, max_tokens=8, stop=("END",), seed=7)
        request = await _send(server, account, "", "gemma", params, tmp_path)
        sent = _last_task(server)
        assert (sent["params"]["seed"], sent["params"]["n_predict"]) == (7, 8)
        for snippet in request_snippets(request):
            _run(snippet.language, snippet.text, key_env_var(request.provider_id), "")
            seen = _last_task(server)
            assert seen["id_task"] > sent["id_task"], snippet.title
            assert {k: seen[k] for k in ("params", "n_prompt_tokens")} == {
                k: sent[k] for k in ("params", "n_prompt_tokens")
            }, snippet.title


@pytest.mark.asyncio
async def test_the_newer_parameters_go_out_in_the_snippets_as_the_app_sent_them(
    openai_server: FaultServer, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    account = Account(provider_id="openai_compatible", label="Lab", base_url=openai_server.base_url)
    params = ChatParams(
        max_completion_tokens=30,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        reasoning_effort="low",
        top_k=40,  # OpenAI's API has no top_k: left out (and said so), as for a strict OpenAI-compatible server
    )
    request = await _send(openai_server, account, "sk-test", "ok", params, tmp_path)

    assert request.params == {
        "max_completion_tokens": 30,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "reasoning_effort": "low",
    }
    _check_snippets(openai_server, request, "sk-test", {"authorization"})


@pytest.mark.asyncio
async def test_the_snippets_of_a_reply_with_anthropics_thinking_budget_send_what_the_app_sent(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        params = ChatParams(thinking_budget=2048, max_completion_tokens=4096, top_p=0.95)
        request = await _send(server, account, "sk-ant-test-a", "claude-sonnet-4-5", params, tmp_path)

        body = server.requests[-1].json()
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] == 4096
        not_run = () if _runs_python_with("anthropic") else ("Anthropic SDK",)
        _check_snippets(server, request, "sk-ant-test-a", {"x-api-key"}, not_run=not_run)


@pytest.mark.asyncio
async def test_llama_server_reads_top_k_and_the_penalties_from_the_app_and_from_the_snippets(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with LlamaServer() as server:
        account = Account(provider_id="llamacpp", label="Gemma", base_url=f"{server.base_url}/v1")
        params = ChatParams(top_k=7, presence_penalty=0.4, frequency_penalty=0.3, max_completion_tokens=6, seed=3)
        request = await _send(server, account, "", "gemma", params, tmp_path)
        sent = _last_task(server)
        parsed = sent["params"]
        assert (parsed["top_k"], parsed["n_predict"]) == (7, 6)
        assert (parsed["presence_penalty"], parsed["frequency_penalty"]) == pytest.approx((0.4, 0.3))
        for snippet in request_snippets(request):
            _run(snippet.language, snippet.text, key_env_var(request.provider_id), "")
            seen = _last_task(server)
            assert seen["id_task"] > sent["id_task"], snippet.title
            assert seen["params"] == sent["params"], snippet.title


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_the_snippets_of_a_reply_with_attached_files_send_the_files_the_app_sent(
    tmp_path: Path, provider: str
) -> None:
    """An image, a text file and a PDF (a document for OpenAI and Anthropic, its text for Ollama): each
    snippet reads the stored files from the attachments folder and sends the app's body byte for byte."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    attachments_dir = tmp_path / "attach'ments $HOME"  # quoting again, in the folder's name
    if provider == "anthropic":
        if not _runs_python_with("anthropic"):
            pytest.skip("the anthropic package is not installed, so its snippet cannot be run")
        server: Any = AnthropicServer()
        model, key, headers = "claude-sonnet-4-5", "sk-ant-test-a", {"x-api-key", "anthropic-version"}
    elif provider == "ollama":
        server = OllamaServer(installed=("gemma3:4b",))  # a model with the "vision" capability
        model, key, headers = "gemma3:4b", "", set()
    else:
        server = FaultServer()
        model, key, headers = "gpt-4o", "sk-test", {"authorization"}
    with server:
        account = Account(provider_id=provider, label="Files", base_url=server.base_url)
        request = await _send(server, account, key, model, ChatParams(), tmp_path, attachments_dir=attachments_dir)

        assert reads_attachments(request)
        sent = server.requests[-1].json()
        # The second turn sends the first one's files again: 1 image, and for OpenAI and Anthropic 1 PDF.
        assert str(sent).count("iVBORw0KGgo") == 1
        assert str(sent).count("JVBERi0") == (0 if provider == "ollama" else 1)
        # The OpenAI SDK snippet asks Ollama's /v1 endpoint, which this loopback server does not serve.
        not_run = ("OpenAI SDK",) if provider == "ollama" else ()
        _check_snippets(server, request, key, headers, not_run=not_run, attachments_dir=attachments_dir)


@pytest.mark.asyncio
async def test_the_curl_snippet_of_a_gemini_request_with_files_sends_what_the_app_sent(
    openai_server: FaultServer, tmp_path: Path
) -> None:
    """Gemini's inline data, recorded by the OpenAI loopback server (which answers 404, see above)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    account = Account(provider_id="gemini", label="Gemini", base_url=openai_server.base_url.removesuffix("/v1"))
    attachments_dir = tmp_path / "attachments"
    request = await _send(
        openai_server,
        account,
        "AIza-test",
        "gemini-2.5-flash",
        ChatParams(),
        tmp_path,
        fails=True,
        attachments_dir=attachments_dir,
    )
    assert reads_attachments(request)
    _check_snippets(
        openai_server, request, "AIza-test", {"x-goog-api-key"}, answered=False, attachments_dir=attachments_dir
    )


# --- cloud accounts: each twin checks what its provider's documentation asks -----------------------


def _aws_cli_exports_credentials() -> bool:
    """The AWS CLI is installed and is version 2, which has `aws configure export-credentials`."""
    if shutil.which("aws") is None:
        return False
    done = subprocess.run(["aws", "--version"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).startswith("aws-cli/2")


def _curl_signs_aws() -> bool:
    """curl is installed and can sign with AWS Signature Version 4 itself (curl 7.75 or newer)."""
    if shutil.which("curl") is None:
        return False
    done = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True, check=False)
    return "--aws-sigv4" in done.stdout


@pytest.mark.asyncio
async def test_the_snippets_of_an_azure_openai_reply_send_what_the_app_sent(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with AzureServer(deployments={"gpt-4o": "ok"}) as server:
        account = Account(
            provider_id="azure",
            label="Azure",
            base_url=server.endpoint,
            api_version="2025-04-01-preview",
            extra_headers={"X-Team": "it's $team"},
            secret_headers=("X-Session-Token",),
        )
        params = ChatParams(system_prompt=TRICKY, temperature=0.3, top_p=0.9, max_tokens=50, stop=("END",), seed=7)
        key = AzureServer.default_keys[0]
        request = await _send(server, account, key, "gpt-4o", params, tmp_path)

        assert request.api_version == "2025-04-01-preview"
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "OpenAI SDK", "curl"]
        _check_snippets(server, request, key, {"api-key", "x-team", "x-session-token"})
        # The app and each snippet asked the deployment at the account's API version, the key never in the URL.
        chat = {p for p in server.seen_paths if "/chat/completions" in p}
        assert chat == {"/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview"}
        assert all(key not in p for p in server.seen_paths)


_FAKE_GCLOUD = f"""#!{sys.executable}
# gcloud's stand-in: the token of the service account whose key file GOOGLE_APPLICATION_CREDENTIALS names,
# as after `gcloud auth activate-service-account --key-file=...` (signed in at the twin's token_uri).
import os
import sys

from google.auth.transport.requests import Request
from google.oauth2 import service_account

assert sys.argv[1:] == ["auth", "print-access-token"], sys.argv
path = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
credentials = service_account.Credentials.from_service_account_file(path, scopes=["{CLOUD_PLATFORM}"])
credentials.refresh(Request())
print(credentials.token)
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("run", ["LiteLLM and curl", "Anthropic SDK"])
async def test_the_snippets_of_a_vertex_claude_reply_send_what_the_app_sent(tmp_path: Path, run: str) -> None:
    _skip_unless_runnable(run)
    with VertexServer() as server:
        # No project on the account: the key's is used, by LiteLLM and in the stored request alike.
        key = server.service_account("modeldesk-ci@twin-project.iam.gserviceaccount.com", project_id="twin-project")
        account = Account(
            provider_id="vertex",
            label="Vertex",
            base_url=server.endpoint,
            location="us-east5",
            extra_headers={"X-Team": "it's $team"},
            secret_headers=("X-Session-Token",),
        )
        # No max_tokens: LiteLLM's default for the model is sent, and recorded, as for Anthropic.
        params = ChatParams(system_prompt=TRICKY, temperature=0.3, stop=("END", "$HOME"))
        request = await _send(server, account, key, "claude-sonnet-4-5@20250929", params, tmp_path)

        assert (request.project, request.location) == ("twin-project", "us-east5")
        assert set(request.params) == {"temperature", "stop", "max_tokens"}
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "Anthropic SDK", "curl"]
        key_file = tmp_path / "service-account.json"
        key_file.write_text(key)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "gcloud").write_text(_FAKE_GCLOUD)
        (bin_dir / "gcloud").chmod(0o755)
        credentials = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        private_key = json.loads(key)["private_key"]
        assert all(private_key not in s.text for s in request_snippets(request))
        not_run = ("LiteLLM", "curl") if run == "Anthropic SDK" else ("Anthropic SDK",)
        _check_snippets(server, request, key, {"x-team", "x-session-token"}, not_run=not_run, credentials=credentials)
        predicted = (
            f"/v1/projects/twin-project/locations/us-east5/publishers/anthropic/models/{request.model}:streamRawPredict"
        )
        assert set(server.predicted) == {predicted}
        assert len(server.predicted) == 2 + (
            1 if run == "Anthropic SDK" else 2
        )  # the app's two turns, then each snippet's


@pytest.mark.asyncio
@pytest.mark.parametrize("profile", [False, True], ids=["keys", "profile"])
async def test_the_snippets_of_a_bedrock_reply_send_what_the_app_sent(tmp_path: Path, profile: bool) -> None:
    if not _curl_signs_aws():
        pytest.skip("this curl cannot sign with AWS SigV4 (--aws-sigv4 came with curl 7.75)")
    key_id, secret, token = "AKIATWINEXAMPLE00001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTWINSECRET", "FwoGZXIvYXdzTWINtoken"
    # Never the developer's own AWS files; the profile's, when one signs, is written here.
    aws_files = {"AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds")}
    with BedrockServer(valid_keys={key_id}) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in aws_files.items():
            patch.setenv(name, value)
        if profile:
            (tmp_path / "creds").write_text(
                f"[work]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\naws_session_token = {token}\n"
            )
        account = Account(
            provider_id="bedrock",
            label="Bedrock",
            base_url=server.endpoint,
            region="us-east-1",
            aws_profile="work" if profile else None,
            extra_headers={"X-Team": "it's $team"},
            secret_headers=("X-Session-Token",),
        )
        params = ChatParams(system_prompt=TRICKY, temperature=0.3, max_tokens=50, stop=("END", "$HOME"), top_k=5)
        key = "" if profile else aws_credentials(key_id, secret, token)
        model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
        request = await _send(server, account, key, model, params, tmp_path)

        assert (request.region, request.aws_profile) == ("us-east-1", "work" if profile else None)
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "boto3", "curl"]
        assert all(secret not in s.text and token not in s.text for s in request_snippets(request))
        credentials = {**aws_files}
        not_run: tuple[str, ...] = ()
        if profile:
            # curl reads the profile's keys with AWS CLI v2, which this machine may not have.
            not_run = () if _aws_cli_exports_credentials() else ("curl",)
        else:
            credentials |= {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
        headers = {"content-type", "x-amz-security-token", "x-team", "x-session-token"}
        _check_snippets(server, request, key, headers, not_run=not_run, credentials=credentials)
        path = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
        # Every request, the app's and the snippets', signed with the key id for the account's region.
        assert set(server.seen) == {(path, key_id, "us-east-1")}
        assert len(server.seen) == 2 + 3 - len(not_run)
