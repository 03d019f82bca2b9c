"""The snippet builder: strings survive Python and shell quoting, keys appear only as variables,
and every parameter sent is in every snippet (the snippets are also run: test_request_code_runs.py)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from typing import Any

import pytest

from desktop_app.domain.request_code import (
    PLACEHOLDER_KEY,
    URL_PASSWORD_VAR,
    header_env_var,
    key_env_var,
    request_snippets,
)
from desktop_app.domain.request_wire import wire_body, wire_url
from desktop_app.domain.sent_requests import SentRequest, without_url_password

TRICKY = (
    "It's \"quoted\" 'twice', $HOME ${PATH} $(whoami) `date` \\ \\n !! #x\nline two\r\ttab\x00nul\x7f"
    " café 日本 🙂 \u202eevil\u202c \u2028sep"
)
PARAMS = {
    "temperature": 0.7,
    "top_p": 0.5,
    "max_tokens": 33,
    "stop": ["'", '"', "$X", "`y`", "\n"],
    "seed": -3,
    "response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": {"title": TRICKY}}},
}


def make(provider_id: str = "openai", **changes: Any) -> SentRequest:
    fields: dict[str, Any] = {
        "account_id": "a1",
        "provider_id": provider_id,
        "base_url": "https://api.example.test/v1",
        "api_base": None,
        "litellm_model": f"{provider_id}/model-x",
        "model": "model-x",
        "messages": (
            {"role": "system", "content": TRICKY},
            {"role": "user", "content": TRICKY},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "again"},
        ),
        "params": dict(PARAMS),
        "headers": {"X-Team": "it's $team `x`"},
        "secret_headers": ("Cookie",),
        "stream_options": {"include_usage": True},
    }
    fields.update(changes)
    return SentRequest(**fields)


def call_kwargs(source: str, function: str) -> dict[str, ast.expr]:
    """The keyword arguments of the call to `function` in `source` (which must compile)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == function:
            return {k.arg: k.value for k in node.keywords if k.arg}
    raise AssertionError(f"no call to {function}")


def literal(node: ast.expr) -> Any:
    return ast.literal_eval(node)


def curl_argv(snippet: str, env: dict[str, str]) -> list[str]:
    """The arguments bash hands curl for `snippet` (curl replaced by a function that prints them)."""
    script = "curl() { printf '%s\\0' \"$@\"; }\n" + snippet
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": os.environ["PATH"], **env}, capture_output=True, check=True
    )
    return done.stdout.decode().split("\0")[:-1]


def snippet(request: SentRequest, title: str) -> str:
    return next(s.text for s in request_snippets(request) if s.title == title)


def test_the_litellm_snippet_holds_every_parameter_and_the_messages_exactly() -> None:
    request = make(api_base="http://127.0.0.1:9/v1")
    kwargs = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")

    assert literal(kwargs["model"]) == "openai/model-x"
    assert literal(kwargs["messages"]) == list(request.messages)
    assert literal(kwargs["api_base"]) == "http://127.0.0.1:9/v1"
    assert {name: literal(kwargs[name]) for name in PARAMS} == PARAMS
    assert (literal(kwargs["stream"]), literal(kwargs["stream_options"])) == (True, {"include_usage": True})
    assert ast.unparse(kwargs["api_key"]) == "os.environ['OPENAI_API_KEY']"
    headers = kwargs["extra_headers"]
    assert isinstance(headers, ast.Dict)
    assert [literal(k) for k in headers.keys if k] == ["X-Team", "Cookie"]
    assert literal(headers.values[0]) == "it's $team `x`"
    assert ast.unparse(headers.values[1]) == "os.environ['HEADER_COOKIE']"


def test_the_openai_sdk_snippet_sends_the_same_fields() -> None:
    request = make(params={**PARAMS, "verbosity": "low"})
    source = snippet(request, "OpenAI SDK")
    client = call_kwargs(source, "OpenAI")
    kwargs = call_kwargs(source, "client.chat.completions.create")

    assert literal(client["base_url"]) == "https://api.example.test/v1"
    assert ast.unparse(client["api_key"]) == "os.environ['OPENAI_API_KEY']"
    assert literal(kwargs["messages"]) == list(request.messages)
    assert {name: literal(kwargs[name]) for name in PARAMS} == PARAMS
    assert literal(kwargs["extra_body"]) == {"verbosity": "low"}  # not a keyword of the SDK


def test_the_curl_body_and_headers_survive_the_shell() -> None:
    request = make()
    argv = curl_argv(snippet(request, "curl"), {"OPENAI_API_KEY": "sk-live", "HEADER_COOKIE": "c=1; d='2'"})

    assert argv[argv.index("-N") + 1] == "https://api.example.test/v1/chat/completions"
    headers = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-H"]
    assert headers == [
        "Content-Type: application/json",
        "Authorization: Bearer sk-live",
        "X-Team: it's $team `x`",
        "Cookie: c=1; d='2'",
    ]
    body = json.loads(argv[argv.index("--data-raw") + 1])
    assert body == wire_body(request)
    assert body["messages"] == list(request.messages) and body["stream"] is True
    assert {name: body[name] for name in PARAMS} == PARAMS


@pytest.mark.parametrize("provider_id", ["openai", "anthropic", "ollama", "gemini", "llamacpp"])
def test_no_snippet_holds_a_credential_and_invisible_characters_are_escaped(provider_id: str) -> None:
    for item in request_snippets(make(provider_id)):
        # The record holds no key at all; what stands for it is a variable.
        assert "${" in item.text or "os.environ[" in item.text, item.title
        for char in ("\u202e", "\u2028", "\x00", "\r"):
            assert char not in item.text, (item.title, char)


def test_keys_and_credential_headers_are_named_after_the_provider_and_header() -> None:
    assert key_env_var("anthropic") == "ANTHROPIC_API_KEY"
    assert key_env_var("gemini") == "GEMINI_API_KEY"
    assert key_env_var("llamacpp") == "LLAMACPP_API_KEY"
    assert key_env_var("openai_compatible") == "OPENAI_COMPATIBLE_API_KEY"
    assert header_env_var("X-Session-Token") == "HEADER_X_SESSION_TOKEN"
    assert header_env_var("weird$`'name") == "HEADER_WEIRD_NAME"


def test_a_server_sent_no_key_gets_the_placeholder_the_app_sent() -> None:
    request = make("llamacpp", key_sent=False, secret_headers=(), headers={})
    kwargs = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(kwargs["api_key"]) == PLACEHOLDER_KEY
    argv = curl_argv(snippet(request, "curl"), {})
    assert f"Authorization: Bearer {PLACEHOLDER_KEY}" in argv


def test_anthropic_gets_its_own_body_sdk_and_headers() -> None:
    request = make(
        "anthropic",
        base_url="https://api.anthropic.com",
        params={"temperature": 0.3, "max_tokens": 64000, "stop": ["END"]},
        messages=(
            {"role": "system", "content": TRICKY},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},  # a reply that failed in between is not history
        ),
    )
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "Anthropic SDK", "curl"]
    assert wire_url(request) == "https://api.anthropic.com/v1/messages"
    body = wire_body(request)
    assert body == {
        "model": "model-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}],
        "temperature": 0.3,
        "max_tokens": 64000,
        "stop_sequences": ["END"],
        "system": [{"type": "text", "text": TRICKY}],
        "stream": True,
    }
    kwargs = call_kwargs(snippet(request, "Anthropic SDK"), "client.messages.create")
    assert literal(kwargs["system"]) == body["system"] and literal(kwargs["messages"]) == body["messages"]
    assert literal(kwargs["extra_body"]) == {"temperature": 0.3}
    argv = curl_argv(snippet(request, "curl"), {"ANTHROPIC_API_KEY": "sk-ant-x", "HEADER_COOKIE": "c"})
    assert "x-api-key: sk-ant-x" in argv and "anthropic-version: 2023-06-01" in argv
    assert json.loads(argv[argv.index("--data-raw") + 1]) == body


def test_ollama_is_asked_on_its_own_endpoint_with_its_options() -> None:
    request = make("ollama", base_url="http://127.0.0.1:11434", key_sent=False, secret_headers=(), headers={})
    assert wire_url(request) == "http://127.0.0.1:11434/api/chat"
    body = wire_body(request)
    assert body["options"] == {"temperature": 0.7, "top_p": 0.5, "num_predict": 33, "stop": PARAMS["stop"], "seed": -3}
    assert body["format"] == {"title": TRICKY} and body["stream"] is True
    client = call_kwargs(snippet(request, "OpenAI SDK"), "OpenAI")
    assert literal(client["base_url"]) == "http://127.0.0.1:11434/v1"


def test_gemini_is_asked_on_its_own_endpoint_with_the_key_in_a_header() -> None:
    request = make("gemini", base_url="https://generativelanguage.googleapis.com", secret_headers=(), headers={})
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "curl"]  # no SDK of its own here
    url = "https://generativelanguage.googleapis.com/v1beta/models/model-x:streamGenerateContent?alt=sse"
    assert wire_url(request) == url
    assert wire_url(make("gemini", api_base="http://127.0.0.1:9")) == (
        "http://127.0.0.1:9/models/model-x:streamGenerateContent?alt=sse"
    )
    assert wire_body(request) == {
        "contents": [
            {"role": "user", "parts": [{"text": TRICKY}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ],
        "system_instruction": {"parts": [{"text": TRICKY}]},
        "generationConfig": {
            "temperature": 0.7,
            "top_p": 0.5,
            "max_output_tokens": 33,
            "stop_sequences": PARAMS["stop"],
            "seed": -3,
            "response_mime_type": "application/json",
            "response_json_schema": {"title": TRICKY},
        },
    }
    argv = curl_argv(snippet(request, "curl"), {"GEMINI_API_KEY": "AIza-x"})
    assert argv[argv.index("-N") + 1] == url and "x-goog-api-key: AIza-x" in argv


def test_a_record_round_trips_through_json_and_a_foreign_one_is_refused() -> None:
    request = make()
    assert SentRequest.from_json(json.loads(json.dumps(request.to_json()))) == request
    assert SentRequest.from_json({"version": 99}) is None
    assert SentRequest.from_json({"version": 2, "messages": "no"}) is None
    assert SentRequest.from_json({**request.to_json(), "version": 1}) is None  # another build's format
    assert SentRequest.from_json(None) is None


def test_an_anthropic_response_format_is_sent_as_litellm_sends_it_or_said_to_be_left_out() -> None:
    # A JSON object: LiteLLM drops it for Anthropic, so the SDK and curl bodies do too, silently.
    plain = make("anthropic", params={"max_tokens": 10, "response_format": {"type": "json_object"}})
    assert "response_format" not in wire_body(plain)
    assert all(not s.text.startswith("#") for s in request_snippets(plain))
    # A JSON schema: LiteLLM rewrites it its own way; the SDK and curl snippets say they leave it out.
    schema = make("anthropic", params={"max_tokens": 10, "response_format": PARAMS["response_format"]})
    assert "response_format" not in wire_body(schema) and "output_format" not in wire_body(schema)
    litellm, sdk, curl = request_snippets(schema)
    assert "response_format" in call_kwargs(litellm.text, "litellm.completion")
    for item in (sdk, curl):
        assert item.text.startswith("# LiteLLM turns response_format (a JSON schema) into Anthropic's")
    compile(sdk.text, "sdk", "exec")
    assert json.loads(curl_argv(curl.text, {})[-1]) == wire_body(schema)


def test_the_password_of_a_url_is_neither_kept_nor_shown_but_read_from_the_environment() -> None:
    assert without_url_password("http://bob:pa%40ss@127.0.0.1:9/v1") == ("http://bob@127.0.0.1:9/v1", True)
    assert without_url_password("http://bob@127.0.0.1:9/v1") == ("http://bob@127.0.0.1:9/v1", False)
    assert without_url_password("https://api.example.test/v1") == ("https://api.example.test/v1", False)
    base = "http://bob@127.0.0.1:9/v1"
    request = make(base_url=base, api_base=base, url_password=True)
    kwargs = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert ast.unparse(kwargs["api_base"]) == "'http://bob:' + os.environ['BASE_URL_PASSWORD'] + '@127.0.0.1:9/v1'"
    client = call_kwargs(snippet(request, "OpenAI SDK"), "OpenAI")
    assert ast.unparse(client["base_url"]) == ast.unparse(kwargs["api_base"])
    argv = curl_argv(snippet(request, "curl"), {URL_PASSWORD_VAR: "pa%40ss"})
    assert argv[argv.index("-N") + 1] == "http://bob:pa%40ss@127.0.0.1:9/v1/chat/completions"
    anthropic = make("anthropic", base_url="https://bob@api.example.test", url_password=True)
    client = call_kwargs(snippet(anthropic, "Anthropic SDK"), "anthropic.Anthropic")
    assert "os.environ['BASE_URL_PASSWORD']" in ast.unparse(client["base_url"])


NEW_PARAMS = {
    "top_k": 40,
    "max_completion_tokens": 300,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.25,
    "reasoning_effort": "low",
}


def test_the_newer_parameters_are_in_every_openai_snippet() -> None:
    request = make(params={**PARAMS, **NEW_PARAMS})
    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert {name: literal(litellm[name]) for name in NEW_PARAMS} == NEW_PARAMS
    sdk = call_kwargs(snippet(request, "OpenAI SDK"), "client.chat.completions.create")
    openai_kwargs = {k: v for k, v in NEW_PARAMS.items() if k != "top_k"}
    assert {name: literal(sdk[name]) for name in openai_kwargs} == openai_kwargs
    assert literal(sdk["extra_body"]) == {"top_k": 40}  # not a keyword of the SDK: sent in the body
    argv = curl_argv(snippet(request, "curl"), {"OPENAI_API_KEY": "sk-live", "HEADER_COOKIE": "c"})
    body = json.loads(argv[argv.index("--data-raw") + 1])
    assert {name: body[name] for name in NEW_PARAMS} == NEW_PARAMS


def test_anthropics_thinking_budget_and_completion_limit_are_sent_by_their_names() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    request = make("anthropic", params={"max_completion_tokens": 4096, "thinking": thinking, "top_p": 0.95})
    body = wire_body(request)
    assert (body["max_tokens"], body["thinking"], body["top_p"]) == (4096, thinking, 0.95)
    assert "max_completion_tokens" not in body
    kwargs = call_kwargs(snippet(request, "Anthropic SDK"), "client.messages.create")
    assert literal(kwargs["max_tokens"]) == 4096
    assert literal(kwargs["extra_body"]) == {"thinking": thinking, "top_p": 0.95}
    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(litellm["thinking"]) == thinking and literal(litellm["max_completion_tokens"]) == 4096


def test_a_reasoning_effort_litellm_turns_into_a_budget_is_said_to_be_left_out() -> None:
    request = make("anthropic", params={"max_tokens": 64000, "reasoning_effort": "medium"})
    assert "reasoning_effort" not in wire_body(request) and "thinking" not in wire_body(request)
    litellm, sdk, curl = request_snippets(request)
    assert literal(call_kwargs(litellm.text, "litellm.completion")["reasoning_effort"]) == "medium"
    for item in (sdk, curl):
        assert item.text.startswith("# LiteLLM turns reasoning_effort into a thinking budget")
    compile(sdk.text, "sdk", "exec")


def test_ollama_gets_top_k_in_its_options_and_thinking_as_litellm_sends_it() -> None:
    params = {"top_k": 40, "max_completion_tokens": 64, "frequency_penalty": 1.1, "reasoning_effort": "high"}
    body = wire_body(make("ollama", base_url="http://127.0.0.1:11434", params=params))
    assert body["options"] == {"top_k": 40, "num_predict": 64, "repeat_penalty": 1.1}
    assert body["think"] is True
    gpt_oss = wire_body(make("ollama", model="gpt-oss:20b", params={"reasoning_effort": "high"}))
    assert gpt_oss["think"] == "high"
    assert wire_body(make("ollama", params={"reasoning_effort": "minimal"}))["think"] is False
