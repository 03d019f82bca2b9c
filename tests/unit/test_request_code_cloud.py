"""The snippets of Azure OpenAI, Claude on Vertex AI and Bedrock requests: each one's URL, body and way
of signing as LiteLLM sends them (they are also run against the loopback twins: test_request_code_runs.py)."""

from __future__ import annotations

import ast
import json
from typing import Any

from desktop_app.domain.providers import AZURE_API_VERSION
from desktop_app.domain.request_code import credential_vars, request_snippets
from desktop_app.domain.request_wire import wire_body, wire_url
from desktop_app.domain.sent_requests import SentRequest
from tests.unit.test_request_code import TRICKY, call_kwargs, curl_argv, literal, make, snippet

AZURE_ENDPOINT = "https://work.openai.azure.com"
CLAUDE = "claude-sonnet-4-5@20250929"
BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
FAKE_GCLOUD = 'gcloud() { [ "$*" = "auth print-access-token" ] && echo ya29.from-gcloud; }\n'


def azure(**changes: Any) -> SentRequest:
    fields: dict[str, Any] = {
        "base_url": AZURE_ENDPOINT,
        "api_base": AZURE_ENDPOINT,
        "litellm_model": "azure/gpt-4o",
        "model": "gpt-4o",
        "api_version": "2025-04-01-preview",
    }
    return make("azure", **{**fields, **changes})


def vertex(**changes: Any) -> SentRequest:
    fields: dict[str, Any] = {
        "base_url": "https://europe-west1-aiplatform.googleapis.com",
        "litellm_model": f"vertex_ai/{CLAUDE}",
        "model": CLAUDE,
        "params": {"max_tokens": 1024, "temperature": 0.3, "stop": ["END"]},
        "project": "work-project",
        "location": "europe-west1",
    }
    return make("vertex", **{**fields, **changes})


def bedrock(**changes: Any) -> SentRequest:
    fields: dict[str, Any] = {
        "base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com",
        "litellm_model": f"bedrock/{BEDROCK_MODEL}",
        "model": BEDROCK_MODEL,
        "params": {"max_tokens": 300, "temperature": 0.3, "stop": ["END", "$HOME"], "top_k": 5},
        "headers": {},
        "secret_headers": (),
        "region": "eu-central-1",
    }
    return make("bedrock", **{**fields, **changes})


def headers_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-H"]


# --- Azure OpenAI ----------------------------------------------------------------------------------


def test_azure_is_asked_at_the_deployment_with_the_api_version_and_the_key_in_api_key() -> None:
    request = azure()
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "OpenAI SDK", "curl"]
    url = f"{AZURE_ENDPOINT}/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview"
    assert wire_url(request) == url
    body = wire_body(request)
    assert body["model"] == "gpt-4o" and body["messages"] == list(request.messages) and body["stream"] is True

    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(litellm["model"]) == "azure/gpt-4o"
    assert (literal(litellm["api_base"]), literal(litellm["api_version"])) == (AZURE_ENDPOINT, "2025-04-01-preview")
    assert ast.unparse(litellm["api_key"]) == "os.environ['AZURE_API_KEY']"

    sdk = snippet(request, "OpenAI SDK")
    client = call_kwargs(sdk, "AzureOpenAI")
    assert literal(client["azure_endpoint"]) == AZURE_ENDPOINT
    assert literal(client["api_version"]) == "2025-04-01-preview"
    assert ast.unparse(client["api_key"]) == "os.environ['AZURE_API_KEY']"
    assert literal(call_kwargs(sdk, "client.chat.completions.create")["model"]) == "gpt-4o"

    argv = curl_argv(snippet(request, "curl"), {"AZURE_API_KEY": "azure-live", "HEADER_COOKIE": "c"})
    assert argv[argv.index("-N") + 1] == url
    assert headers_of(argv) == [
        "Content-Type: application/json",
        "api-key: azure-live",
        "X-Team: it's $team `x`",
        "Cookie: c",
    ]
    assert json.loads(argv[argv.index("--data-raw") + 1]) == body


def test_an_azure_request_stored_without_its_api_version_gets_the_default_one() -> None:
    assert wire_url(azure(api_version=None)).endswith(f"?api-version={AZURE_API_VERSION}")


# --- Claude on Vertex AI ---------------------------------------------------------------------------


def test_vertex_is_asked_at_stream_raw_predict_with_vertexs_anthropic_version_and_no_model_in_the_body() -> None:
    request = vertex()
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "Anthropic SDK", "curl"]
    url = (
        "https://europe-west1-aiplatform.googleapis.com/v1/projects/work-project/locations/europe-west1"
        f"/publishers/anthropic/models/{CLAUDE}:streamRawPredict"
    )
    assert wire_url(request) == url
    body = wire_body(request)
    assert body == {
        "anthropic_version": "vertex-2023-10-16",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": TRICKY}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ],
        "max_tokens": 1024,
        "temperature": 0.3,
        "stop_sequences": ["END"],
        "system": [{"type": "text", "text": TRICKY}],
        "stream": True,
    }

    source = snippet(request, "LiteLLM")
    litellm = call_kwargs(source, "litellm.completion")
    assert literal(litellm["model"]) == f"vertex_ai/{CLAUDE}"
    assert (literal(litellm["vertex_project"]), literal(litellm["vertex_location"])) == ("work-project", "europe-west1")
    # The key file is read where GOOGLE_APPLICATION_CREDENTIALS points; no key is a bearer token.
    assert (
        ast.unparse(litellm["vertex_credentials"]) == "Path(os.environ['GOOGLE_APPLICATION_CREDENTIALS']).read_text()"
    )
    assert "api_key" not in litellm and "from pathlib import Path" in source

    sdk = snippet(request, "Anthropic SDK")
    assert "from anthropic import AnthropicVertex" in sdk
    client = call_kwargs(sdk, "AnthropicVertex")
    assert {k: literal(v) for k, v in client.items()} == {"project_id": "work-project", "region": "europe-west1"}
    kwargs = call_kwargs(sdk, "client.messages.create")
    assert literal(kwargs["model"]) == CLAUDE and literal(kwargs["messages"]) == body["messages"]
    # The SDK's own anthropic_version differs between its versions: LiteLLM's is sent.
    assert literal(kwargs["extra_body"]) == {"temperature": 0.3, "anthropic_version": "vertex-2023-10-16"}

    argv = curl_argv(FAKE_GCLOUD + snippet(request, "curl"), {"HEADER_COOKIE": "c"})
    assert argv[argv.index("-N") + 1] == url
    assert "Authorization: Bearer ya29.from-gcloud" in headers_of(argv)
    assert json.loads(argv[argv.index("--data-raw") + 1]) == body


def test_a_vertex_base_url_of_the_account_reaches_every_snippet() -> None:
    request = vertex(base_url="http://127.0.0.1:9", api_base="http://127.0.0.1:9")
    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(litellm["api_base"]) == "http://127.0.0.1:9"
    client = call_kwargs(snippet(request, "Anthropic SDK"), "AnthropicVertex")
    assert literal(client["base_url"]) == "http://127.0.0.1:9/v1"  # the SDK's base holds the API version
    assert wire_url(request).startswith("http://127.0.0.1:9/v1/projects/work-project/")


def test_a_vertex_request_without_its_project_says_where_to_put_it() -> None:
    request = vertex(project=None)
    assert "/projects/PROJECT_ID/" in wire_url(request)
    for item in request_snippets(request)[1:]:
        assert "put yours in place of PROJECT_ID" in item.text, item.title


# --- Amazon Bedrock --------------------------------------------------------------------------------


def test_bedrock_is_asked_at_converse_stream_with_the_converse_body() -> None:
    request = bedrock()
    assert [s.title for s in request_snippets(request)] == ["LiteLLM", "boto3", "curl"]
    url = "https://bedrock-runtime.eu-central-1.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    assert wire_url(request) == url
    body = wire_body(request)
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": TRICKY}]},
            {"role": "assistant", "content": [{"text": "ok"}]},
            {"role": "user", "content": [{"text": "again"}]},
        ],
        "system": [{"text": TRICKY}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.3, "stopSequences": ["END", "$HOME"]},
        "additionalModelRequestFields": {"top_k": 5},
    }

    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(litellm["aws_region_name"]) == "eu-central-1"
    assert ast.unparse(litellm["aws_access_key_id"]) == "os.environ['AWS_ACCESS_KEY_ID']"
    assert ast.unparse(litellm["aws_secret_access_key"]) == "os.environ['AWS_SECRET_ACCESS_KEY']"
    assert ast.unparse(litellm["aws_session_token"]) == "os.environ.get('AWS_SESSION_TOKEN')"
    assert "api_key" not in litellm and "aws_profile_name" not in litellm

    source = snippet(request, "boto3")
    client = call_kwargs(source, "boto3.client")
    assert {k: literal(v) for k, v in client.items()} == {
        "service_name": "bedrock-runtime",
        "region_name": "eu-central-1",
    }
    kwargs = {k: literal(v) for k, v in call_kwargs(source, "client.converse_stream").items()}
    assert kwargs == {"modelId": BEDROCK_MODEL, **body}


def test_bedrocks_curl_signs_with_sigv4_and_sends_a_session_token_only_when_there_is_one() -> None:
    request = bedrock()
    keys = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000000001", "AWS_SECRET_ACCESS_KEY": "s3cr$t'/x"}
    argv = curl_argv(snippet(request, "curl"), keys)
    assert argv[argv.index("--aws-sigv4") + 1] == "aws:amz:eu-central-1:bedrock"
    assert argv[argv.index("--user") + 1] == "AKIAEXAMPLE000000001:s3cr$t'/x"
    assert headers_of(argv) == ["Content-Type: application/json"]  # no bearer key, no token
    assert json.loads(argv[argv.index("--data-raw") + 1]) == wire_body(request)
    with_token = curl_argv(snippet(request, "curl"), {**keys, "AWS_SESSION_TOKEN": "tok $(x)"})
    assert headers_of(with_token) == ["Content-Type: application/json", "x-amz-security-token: tok $(x)"]


def test_a_bedrock_account_with_an_aws_profile_signs_with_it_in_every_snippet() -> None:
    request = bedrock(aws_profile="work", key_sent=False)
    litellm = call_kwargs(snippet(request, "LiteLLM"), "litellm.completion")
    assert literal(litellm["aws_profile_name"]) == "work" and "aws_access_key_id" not in litellm
    source = snippet(request, "boto3")
    assert literal(call_kwargs(source, "boto3.Session")["profile_name"]) == "work"
    assert literal(call_kwargs(source, "session.client")["region_name"]) == "eu-central-1"
    assert "eval \"$(aws configure export-credentials --profile 'work' --format env)\"" in snippet(request, "curl")
    assert credential_vars(request) == []


def test_what_litellm_turns_into_bedrocks_own_fields_is_said_to_be_left_out() -> None:
    plain = bedrock()
    assert all(not s.text.startswith("#") for s in request_snippets(plain)[:2])
    request = bedrock(params={"max_tokens": 10, "seed": 3, "response_format": {"type": "json_object"}})
    assert wire_body(request)["inferenceConfig"] == {"maxTokens": 10}
    litellm, boto3, curl = request_snippets(request)
    assert literal(call_kwargs(litellm.text, "litellm.completion")["seed"]) == 3
    for item in (boto3, curl):
        assert item.text.startswith("# LiteLLM turns response_format, seed into Bedrock's own Converse fields")
    compile(boto3.text, "boto3", "exec")


# --- all three -------------------------------------------------------------------------------------


def test_cloud_snippets_read_credentials_from_the_environment_only() -> None:
    assert credential_vars(azure()) == ["AZURE_API_KEY"]
    assert credential_vars(vertex()) == ["GOOGLE_APPLICATION_CREDENTIALS"]
    assert credential_vars(bedrock()) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    for request in (azure(), vertex(), bedrock()):
        for item in request_snippets(request):
            assert "os.environ" in item.text or "${" in item.text or "$(gcloud" in item.text, item.title
            if item.language == "python":
                compile(item.text, item.title, "exec")


def test_the_cloud_fields_round_trip_and_a_record_from_before_them_still_loads() -> None:
    for request in (azure(), vertex(), bedrock(aws_profile="work")):
        assert SentRequest.from_json(json.loads(json.dumps(request.to_json()))) == request
    # As written before these were kept: the default endpoint's host still tells the region and location.
    older = {k: v for k, v in bedrock().to_json().items() if k != "region"}
    loaded = SentRequest.from_json(older)
    assert loaded is not None and loaded.region is None
    litellm = call_kwargs(snippet(loaded, "LiteLLM"), "litellm.completion")
    assert literal(litellm["aws_region_name"]) == "eu-central-1"
    older = {k: v for k, v in vertex().to_json().items() if k not in ("project", "location")}
    loaded = SentRequest.from_json(older)
    assert loaded is not None and (loaded.project, loaded.location) == (None, None)
    assert "/projects/PROJECT_ID/locations/europe-west1/" in wire_url(loaded)
    plain = make().to_json()  # other providers' records are as before
    assert not {"api_version", "project", "location", "region", "aws_profile"} & plain.keys()
