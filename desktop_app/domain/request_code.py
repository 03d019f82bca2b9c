"""A stored request as code to run elsewhere: Python with LiteLLM, with the provider's SDK, and curl.

Each snippet sends the body the app sent (streaming, as the app did). Keys and credential headers
appear only as environment-variable references: `os.environ["OPENAI_API_KEY"]` in Python,
`$OPENAI_API_KEY` in the shell. Attached files are kept in a request by their SHA-256
(`data:image/png;sha256,<hex>`); the snippets read each from the attachments folder
(`MODELDESK_ATTACHMENTS`, else the folder given) and send it base64-encoded, in the provider's
own blocks where the snippet speaks its wire format (Anthropic's image and document blocks,
Ollama's `images`).

Cloud accounts are written as LiteLLM sends to them: Azure OpenAI's deployment URL with the api-version
and the key in `api-key`; Claude on Vertex AI's streamRawPredict with a Google access token (the
snippets read the service-account key file named by GOOGLE_APPLICATION_CREDENTIALS, curl asks gcloud);
Bedrock's ConverseStream, signed with SigV4 from the standard AWS variables or the account's profile.
"""

from __future__ import annotations

import base64
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from desktop_app.domain.attachments import stored_name
from desktop_app.domain.providers import AWS_REGION, AZURE_API_VERSION, PROVIDERS, VERTEX_LOCATION
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tool_code import TOOL_PARAMS, anthropic_tool_message, anthropic_tool_params

# What LiteLLM sends as the key to a server that needs none (see services/chat/llm.py).
PLACEHOLDER_KEY = "no-key"
ANTHROPIC_VERSION = "2023-06-01"
GEMINI_API_VERSION = "v1beta"
URL_PASSWORD_VAR = "BASE_URL_PASSWORD"  # the password of the base URL's user info, when it has one
ATTACHMENTS_VAR = "MODELDESK_ATTACHMENTS"  # the attachments folder, read by snippets that send files
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"  # what LiteLLM puts in the body of Claude on Vertex AI
GOOGLE_CREDENTIALS_VAR = "GOOGLE_APPLICATION_CREDENTIALS"  # the path of a service-account key file
AWS_KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
AWS_SESSION_VAR = "AWS_SESSION_TOKEN"  # sent when set (temporary credentials)
MISSING_PROJECT = "PROJECT_ID"  # stands for a Vertex AI project the request did not record
_MARKER = re.compile(r"data:([\w.+-]+/[\w.+-]+);sha256,([0-9a-f]{64})")
# An attached file in the JSON text of a body: "\ufffe" is a noncharacter, so no text holds one.
_FILE_IN_JSON = re.compile(r"\\ufffeattachment:([^:\\]+):([^\\]*)\\ufffe")
# OpenAI-style parameters by their name in Gemini's generationConfig.
_GEMINI_CONFIG = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "stop": "stop_sequences",
}
_INDENT = "    "
_INLINE_WIDTH = 100
_SHELL_PLAIN = re.compile(r"[A-Za-z0-9 _:./=-]*")
# Keyword arguments of the SDKs' create(); anything else goes in extra_body.
_OPENAI_KWARGS = frozenset(
    {
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "n",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "stop",
        "temperature",
        "tool_choice",
        "tools",
        "parallel_tool_calls",
        "top_logprobs",
        "top_p",
        "user",
    }
)
# OpenAI-style parameters by their name in Anthropic's Messages API.
_ANTHROPIC_NAMES = {"stop": "stop_sequences", "max_completion_tokens": "max_tokens"}
# The reasoning efforts LiteLLM sends to Ollama as think: true (other models than gpt-oss).
_OLLAMA_THINKING_EFFORTS = frozenset({"low", "medium", "high"})
# temperature, top_p and top_k are not keyword arguments of every anthropic SDK version: they go in extra_body.
_ANTHROPIC_KWARGS = frozenset({"max_tokens", "stop_sequences", "metadata", "tools", "tool_choice"})
# OpenAI-style parameters by their name in Bedrock Converse's inferenceConfig.
_BEDROCK_CONFIG = {
    "max_tokens": "maxTokens",
    "max_completion_tokens": "maxTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "stop": "stopSequences",
}
# Whose own thinking parameter gives a budget, by wire format (see untranslated()).
_THINKING_OWNER = {"anthropic": "Anthropic", "vertex": "Anthropic", "gemini": "Gemini"}


@dataclass(frozen=True, slots=True)
class Snippet:
    title: str  # the tab's name
    language: str  # "python" or "shell"
    text: str


class _Code(str):
    """Python source put into a snippet as it is (an environment lookup), not as a string literal."""

    __slots__ = ()


class _File(str):
    """An attached file's data in a body: `prefix` (a data URL's head, or nothing), then the base64 of
    the stored file `name` (relative to the attachments folder). As text, a token that curl's JSON is
    cut at."""

    name: str
    prefix: str
    media_type: str

    def __new__(cls, name: str, prefix: str, media_type: str) -> _File:
        token = super().__new__(cls, f"\ufffeattachment:{name}:{prefix}\ufffe")
        token.name, token.prefix, token.media_type = name, prefix, media_type
        return token

    def bare(self) -> _File:
        """The base64 alone, without the data URL's head."""
        return _File(self.name, "", self.media_type)


def _file_of(url: str) -> Any:
    """A stored data URL (`data:<type>;sha256,<hex>`) as the file it stands for; anything else as is."""
    found = _MARKER.fullmatch(url)
    if found is None:
        return url
    return _File(stored_name(found[2], found[1]), f"data:{found[1]};base64,", found[1])


def _with_files(messages: Any) -> list[dict[str, Any]]:
    """The messages with each stored file's data URL as a `_File` (content parts copied)."""
    out = []
    for message in messages:
        content = message["content"]
        if content is None:  # calls without text: LiteLLM sends no content at all
            out.append({k: v for k, v in message.items() if k != "content"})
            continue
        if isinstance(content, list):
            content = [_part_with_file(part) for part in content]
        out.append({**message, "content": content})
    return out


def _part_with_file(part: dict[str, Any]) -> dict[str, Any]:
    for key, field_name in (("image_url", "url"), ("file", "file_data")):
        inner = part.get(key)
        if isinstance(inner, dict) and isinstance(inner.get(field_name), str):
            return {**part, key: {**inner, field_name: _file_of(inner[field_name])}}
    return dict(part)


def _has_files(value: Any) -> bool:
    if isinstance(value, _File):
        return True
    if isinstance(value, dict):
        return any(_has_files(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_files(v) for v in value)
    return False


def reads_attachments(request: SentRequest) -> bool:
    """The snippets of `request` read attached files from the attachments folder (`ATTACHMENTS_VAR`)."""
    return _has_files(_with_files(request.messages))


def resolve_files(value: Any, read: Callable[[str], bytes]) -> Any:
    """`value` (a body from `wire_body`) with each attached file's data filled in from `read(name)`,
    as the snippets send it."""
    if isinstance(value, _File):
        return value.prefix + base64.b64encode(read(value.name)).decode()
    if isinstance(value, dict):
        return {k: resolve_files(v, read) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_files(v, read) for v in value]
    return value


def _data_source(url: Any) -> tuple[str, Any] | None:
    """(media type, base64 data) of an attached file or an inline data URL; None for a web URL."""
    if isinstance(url, _File):
        return url.media_type, url.bare()
    head, sep, data = str(url).partition(";base64,")
    if sep and head.startswith("data:"):
        return head[5:], data
    return None


def _file_url(part: dict[str, Any]) -> Any:
    return part["image_url"]["url"] if part.get("type") == "image_url" else part["file"]["file_data"]


def key_env_var(provider_id: str) -> str:
    """Where the snippet reads the key: the provider's usual variable, else one named after it."""
    entry = PROVIDERS.get(provider_id)
    if entry is not None and entry.env_vars:
        return entry.env_vars[0]
    return f"{_env_name(provider_id)}_API_KEY"


def header_env_var(name: str) -> str:
    """Where the snippet reads a credential header's value."""
    return f"HEADER_{_env_name(name)}"


def credential_vars(request: SentRequest) -> list[str]:
    """The environment variables the snippets read credentials from (none with a placeholder key or
    an AWS profile)."""
    wire = wire_format(request.provider_id)
    if wire == "vertex":
        return [GOOGLE_CREDENTIALS_VAR]
    if wire == "bedrock":
        return [] if request.aws_profile else list(AWS_KEY_VARS)
    return [key_env_var(request.provider_id)] if request.key_sent else []


def wire_format(provider_id: str) -> str:
    """The wire format LiteLLM speaks to this provider: "openai", "anthropic", "ollama", "gemini", or a
    cloud's own: "azure" (OpenAI's body at a deployment), "vertex" (Anthropic's body), "bedrock" (Converse)."""
    own = ("anthropic", "ollama", "gemini", "azure", "vertex", "bedrock")
    return provider_id if provider_id in own else "openai"


def _speaks_anthropic(wire: str) -> bool:
    return wire in ("anthropic", "vertex")


def _api_version(request: SentRequest) -> str:
    return request.api_version or AZURE_API_VERSION


def _project(request: SentRequest) -> str:
    return request.project or MISSING_PROJECT


# Requests stored before the location and region were kept: the default endpoint's host tells them.
_VERTEX_HOST = re.compile(r"https://([a-z0-9-]+)-aiplatform\.googleapis\.com")
_BEDROCK_HOST = re.compile(r"https://bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com")


def _location(request: SentRequest) -> str:
    found = _VERTEX_HOST.fullmatch(request.base_url.rstrip("/"))
    return request.location or (found[1] if found else VERTEX_LOCATION)


def _region(request: SentRequest) -> str:
    found = _BEDROCK_HOST.fullmatch(request.base_url.rstrip("/"))
    return request.region or (found[1] if found else AWS_REGION)


def request_snippets(request: SentRequest, attachments_dir: str | None = None) -> list[Snippet]:
    """The snippets for `request`, in tab order: LiteLLM, the provider's SDK where one applies, curl.
    `attachments_dir`: where attached files are kept (else the snippets need `ATTACHMENTS_VAR` set)."""
    snippets = [Snippet("LiteLLM", "python", litellm_snippet(request, attachments_dir))]
    wire = wire_format(request.provider_id)
    if _speaks_anthropic(wire):
        snippets.append(Snippet("Anthropic SDK", "python", anthropic_snippet(request, attachments_dir)))
    elif wire in ("openai", "ollama", "azure"):
        snippets.append(Snippet("OpenAI SDK", "python", openai_snippet(request, attachments_dir)))
    elif wire == "bedrock":
        snippets.append(Snippet("boto3", "python", boto3_snippet(request)))
    snippets.append(Snippet("curl", "shell", curl_snippet(request, attachments_dir)))
    return snippets


# --- what goes on the wire -------------------------------------------------------------------------


def wire_url(request: SentRequest) -> str:
    base = request.base_url.rstrip("/")
    wire = wire_format(request.provider_id)
    if wire == "anthropic":
        return f"{base}/v1/messages"
    if wire == "ollama":
        return f"{base}/api/chat"
    if wire == "gemini":
        # LiteLLM puts the API version after the default host, not after a base URL of the account's.
        root = request.api_base.rstrip("/") if request.api_base else f"{base}/{GEMINI_API_VERSION}"
        return f"{root}/models/{request.model}:streamGenerateContent?alt=sse"
    if wire == "azure":
        return f"{base}/openai/deployments/{request.model}/chat/completions?api-version={_api_version(request)}"
    if wire == "vertex":
        where = f"projects/{_project(request)}/locations/{_location(request)}"
        return f"{base}/v1/{where}/publishers/anthropic/models/{request.model}:streamRawPredict"
    if wire == "bedrock":
        return f"{base}/model/{quote(request.model, safe='')}/converse-stream"  # "v1:0" as "v1%3A0"
    return f"{base}/chat/completions"


def wire_body(request: SentRequest) -> dict[str, Any]:
    """The JSON body the provider is sent for `request` (as LiteLLM writes it)."""
    wire = wire_format(request.provider_id)
    if wire == "anthropic":
        return _anthropic_body(request)
    if wire == "ollama":
        return _ollama_body(request)
    if wire == "gemini":
        return _gemini_body(request)
    if wire == "vertex":
        # The model is in the URL; the version is Vertex AI's.
        body = {k: v for k, v in _anthropic_body(request).items() if k != "model"}
        return {"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body}
    if wire == "bedrock":
        return _bedrock_body(request)
    body = {"model": request.model, "messages": _with_files(request.messages)}
    body.update(request.params)
    body["stream"] = True
    if request.stream_options:
        body["stream_options"] = dict(request.stream_options)
    return body


def _anthropic_body(request: SentRequest) -> dict[str, Any]:
    system = [{"type": "text", "text": m["content"]} for m in request.messages if m["role"] == "system"]
    messages: list[dict[str, Any]] = []
    for m in _with_files(request.messages):
        if m["role"] == "system":
            continue
        role, blocks = anthropic_tool_message(m) or (m["role"], _anthropic_blocks(m["content"]))
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # the API wants turns to alternate
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    for name, value in request.params.items():
        if name not in ("response_format", "reasoning_effort", *TOOL_PARAMS):  # see untranslated()
            body[_ANTHROPIC_NAMES.get(name, name)] = value
    body.update(anthropic_tool_params(request.params))
    if system:
        body["system"] = system
    body["stream"] = True
    return body


def _anthropic_blocks(content: Any) -> list[dict[str, Any]]:
    """A message's content as Anthropic blocks, as LiteLLM writes them: an image, a PDF a document."""
    if not isinstance(content, list):
        return [{"type": "text", "text": content}]
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind not in ("image_url", "file"):
            blocks.append(dict(part))
            continue
        url = _file_url(part)
        data = _data_source(url)
        source = (
            {"type": "url", "url": url} if data is None else {"type": "base64", "media_type": data[0], "data": data[1]}
        )
        blocks.append({"type": "image" if kind == "image_url" else "document", "source": source})
    return blocks


def untranslated(request: SentRequest) -> str:
    """What the SDK and curl snippets leave out because LiteLLM rewrites it in its own way, or ""."""
    fmt = request.params.get("response_format")
    wire = wire_format(request.provider_id)
    notes = []
    if wire == "bedrock":
        notes += _bedrock_untranslated(request)
    if _speaks_anthropic(wire) and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        notes.append(
            "LiteLLM turns response_format (a JSON schema) into Anthropic's structured output, adapting"
            " the schema; that part is left out here, the LiteLLM tab sends it as the app did."
        )
    if wire == "gemini" and "tools" in request.params:
        notes.append(
            "LiteLLM turns tools, calls and results into Gemini's function declarations and parts; that"
            " part is left out here, the LiteLLM tab sends it as the app did."
        )
    if wire in _THINKING_OWNER and "reasoning_effort" in request.params:
        notes.append(
            f"LiteLLM turns reasoning_effort into a thinking budget of its choosing for this model; that"
            f" part is left out here, the LiteLLM tab sends it as the app did ({_THINKING_OWNER[wire]}'s own"
            " thinking parameter gives the budget explicitly)."
        )
    if wire == "vertex" and request.project is None:
        notes.append(f"The project was not recorded with this request: put yours in place of {MISSING_PROJECT}.")
    return " ".join(notes)


def _bedrock_untranslated(request: SentRequest) -> list[str]:
    left_out = sorted(name for name in request.params if name not in _BEDROCK_CONFIG and name != "top_k")
    if any(m["role"] == "tool" or "tool_calls" in m for m in request.messages):
        left_out.append("the tool calls and results")
    if reads_attachments(request):
        left_out.append("the attached files")
    if not left_out:
        return []
    return [
        f"LiteLLM turns {', '.join(left_out)} into Bedrock's own Converse fields; that part is left out"
        " here, the LiteLLM tab sends it as the app did."
    ]


def _bedrock_body(request: SentRequest) -> dict[str, Any]:
    """The Converse body as LiteLLM writes it: the leading system messages as `system`, turns of text
    blocks (alternating, like Anthropic's), the sampling parameters in inferenceConfig."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        if m["role"] == "system" and not messages:
            system += [{"text": text} for text in _texts(m.get("content")) if text]
            continue
        if m["role"] == "tool" or m["role"] == "system":  # calls and results: see untranslated()
            continue
        role = "assistant" if m["role"] == "assistant" else "user"
        # Bedrock refuses empty text; LiteLLM leaves out a reply's blank text too.
        blocks = [{"text": t} for t in _texts(m.get("content")) if (t.strip() if role == "assistant" else t)]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    config: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in request.params.items():
        if name == "stop" and isinstance(value, str):
            value = [value]
        if name in _BEDROCK_CONFIG:
            config[_BEDROCK_CONFIG[name]] = value
        elif name == "top_k":  # Claude takes it as a field of its own
            extra["top_k"] = value
    body: dict[str, Any] = {"messages": messages, "inferenceConfig": config}
    if system:
        body["system"] = system
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def _texts(content: Any) -> list[str]:
    """A message's text: the string, or its text parts (files: see untranslated())."""
    if content is None:
        return []
    if isinstance(content, list):
        return [str(part["text"]) for part in content if part.get("type") == "text"]
    return [str(content)]


def _gemini_body(request: SentRequest) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for m in _with_files(request.messages):
        parts = _gemini_parts(m.get("content") or "")  # calls and results: see untranslated()
        if m["role"] == "system":
            system.extend(parts)
            continue
        role = "model" if m["role"] == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # turns alternate, as in Anthropic's API
        else:
            contents.append({"role": role, "parts": parts})
    config: dict[str, Any] = {}
    for name, value in request.params.items():
        if name == "reasoning_effort" or name in TOOL_PARAMS:
            continue  # see untranslated()
        if name == "response_format":
            if value.get("type") in ("json_object", "json_schema"):
                config["response_mime_type"] = "application/json"
            if value.get("type") == "json_schema":
                config["response_json_schema"] = value["json_schema"]["schema"]
        else:
            config[_GEMINI_CONFIG.get(name, name)] = value
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["system_instruction"] = {"parts": system}
    if config:
        body["generationConfig"] = config
    return body


def _gemini_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        data = _data_source(_file_url(part)) if part.get("type") in ("image_url", "file") else None
        if data is not None:
            parts.append({"inline_data": {"mime_type": data[0], "data": data[1]}})
        elif part.get("type") == "text":
            parts.append({"text": part["text"]})
    return parts


def _ollama_body(request: SentRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # LiteLLM gives every message a list of images (empty without any), its texts run together.
    messages = []
    for m in _with_files(request.messages):
        content = m.get("content")
        if not isinstance(content, list):
            messages.append({**m, "images": []})
            continue
        text = "".join(p["text"] for p in content if p.get("type") == "text")
        images = [
            data[1] if (data := _data_source(_file_url(p))) is not None else _file_url(p)
            for p in content
            if p.get("type") == "image_url"
        ]
        messages.append({**m, "content": text, "images": images})
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    for name, value in request.params.items():
        if name == "response_format":
            if value.get("type") == "json_object":
                body["format"] = "json"
            elif value.get("type") == "json_schema":
                body["format"] = value["json_schema"]["schema"]
        elif name in TOOL_PARAMS:
            if name == "tools":  # Ollama takes OpenAI's tools as they are, and no tool_choice
                body["tools"] = value
        elif name in ("max_tokens", "max_completion_tokens"):
            options["num_predict"] = value
        elif name == "frequency_penalty":
            options["repeat_penalty"] = value
        elif name == "reasoning_effort":
            # As LiteLLM sends it: gpt-oss takes the level, other models thinking on or off.
            body["think"] = value if request.model.startswith("gpt-oss") else value in _OLLAMA_THINKING_EFFORTS
        else:
            options[name] = value
    body["options"] = options
    body["stream"] = True
    return body


# --- Python --------------------------------------------------------------------------------------


def _python_head(request: SentRequest, *, path: bool = False) -> list[str]:
    """The first imports; base64 and Path too when attached files are read, Path when `path`."""
    if reads_attachments(request):
        return ["import base64", "import os", "from pathlib import Path"]
    return ["import os", "from pathlib import Path"] if path else ["import os"]


def _attached_helper(request: SentRequest, attachments_dir: str | None) -> list[str]:
    if not reads_attachments(request):
        return []
    if attachments_dir:
        where = f"os.environ.get({_py_inline(ATTACHMENTS_VAR)}, {_py_inline(attachments_dir)})"
    else:
        where = f"os.environ[{_py_inline(ATTACHMENTS_VAR)}]"
    return [
        "# The files attached to the conversation, where ModelDesk keeps them (<folder>/<ab>/<SHA-256>.<ext>).",
        f"ATTACHMENTS = Path({where})",
        "",
        "",
        "def attached(name: str) -> str:",
        '    """An attached file, base64-encoded."""',
        "    return base64.b64encode((ATTACHMENTS / name).read_bytes()).decode()",
        "",
        "",
    ]


def litellm_snippet(request: SentRequest, attachments_dir: str | None = None) -> str:
    kwargs: dict[str, Any] = {"model": request.litellm_model, "messages": _with_files(request.messages)}
    if request.api_base is not None:
        kwargs["api_base"] = _url_py(request.api_base, request)
    kwargs.update(_litellm_credentials(request))
    if headers := _headers_code(request):
        kwargs["extra_headers"] = headers
    kwargs["drop_params"] = True
    kwargs.update(request.params)
    kwargs["stream"] = True
    if request.stream_options:
        kwargs["stream_options"] = request.stream_options
    return "\n".join(
        [
            *_python_head(request, path=wire_format(request.provider_id) == "vertex"),
            "",
            "# Without this, importing LiteLLM downloads its price list.",
            'os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")',
            "",
            "import litellm  # noqa: E402",
            "",
            *_attached_helper(request, attachments_dir),
            f"response = {_call('litellm.completion', kwargs)}",
            "for chunk in response:",
            "    if chunk.choices and chunk.choices[0].delta.content:",
            '        print(chunk.choices[0].delta.content, end="", flush=True)',
            "print()",
            "",
        ]
    )


def _litellm_credentials(request: SentRequest) -> dict[str, Any]:
    """How LiteLLM is told who signs, and where in the cloud: keys only as environment lookups."""
    wire = wire_format(request.provider_id)
    if wire == "vertex":
        return {
            "vertex_project": _project(request),
            "vertex_location": _location(request),
            # The service-account key file's JSON: LiteLLM signs in with it.
            "vertex_credentials": _Code(f'Path(os.environ["{GOOGLE_CREDENTIALS_VAR}"]).read_text()'),
        }
    if wire == "bedrock":
        if request.aws_profile:
            return {"aws_region_name": _region(request), "aws_profile_name": request.aws_profile}
        return {
            "aws_region_name": _region(request),
            **{name.lower(): _Code(f'os.environ["{name}"]') for name in AWS_KEY_VARS},
            AWS_SESSION_VAR.lower(): _Code(f'os.environ.get("{AWS_SESSION_VAR}")'),
        }
    credentials: dict[str, Any] = {"api_key": _key_code(request)}
    if wire == "azure":
        credentials["api_version"] = _api_version(request)
    return credentials


def openai_snippet(request: SentRequest, attachments_dir: str | None = None) -> str:
    base = request.base_url.rstrip("/")
    wire = wire_format(request.provider_id)
    sdk_class = "AzureOpenAI" if wire == "azure" else "OpenAI"
    lines = [*_python_head(request), "", f"from openai import {sdk_class}", ""]
    lines += _attached_helper(request, attachments_dir)
    if wire == "ollama":
        base = f"{base}/v1"
        lines.append("# Ollama's OpenAI-compatible endpoint; the app itself asked /api/chat (see the curl tab).")
    client: dict[str, Any] = {"base_url": _url_py(base, request), "api_key": _key_code(request)}
    if wire == "azure":
        lines.append("# The model is the deployment's name: it goes into the URL, as LiteLLM sends it.")
        client = {
            "azure_endpoint": _url_py(base, request),
            "api_version": _api_version(request),
            "api_key": _key_code(request),
        }
    kwargs: dict[str, Any] = {"model": request.model, "messages": _with_files(request.messages)}
    extra = {k: v for k, v in request.params.items() if k not in _OPENAI_KWARGS}
    kwargs.update({k: v for k, v in request.params.items() if k in _OPENAI_KWARGS})
    kwargs["stream"] = True
    if request.stream_options:
        kwargs["stream_options"] = request.stream_options
    if headers := _headers_code(request):
        kwargs["extra_headers"] = headers
    if extra:
        kwargs["extra_body"] = extra
    lines += [
        f"client = {_call(sdk_class, client)}",
        f"stream = {_call('client.chat.completions.create', kwargs)}",
        "for chunk in stream:",
        "    if chunk.choices and chunk.choices[0].delta.content:",
        '        print(chunk.choices[0].delta.content, end="", flush=True)',
        "print()",
        "",
    ]
    return "\n".join(lines)


def anthropic_snippet(request: SentRequest, attachments_dir: str | None = None) -> str:
    body = _anthropic_body(request)
    vertex = wire_format(request.provider_id) == "vertex"
    # As LiteLLM sends it: the key in x-api-key, at this API version (SDKs differ on both).
    client: dict[str, Any] = {
        "base_url": _url_py(request.base_url.rstrip("/"), request),
        "api_key": _Code("key"),
        "default_headers": {"x-api-key": _Code("key"), "anthropic-version": ANTHROPIC_VERSION},
    }
    setup = [f"key = {_py(_key_code(request))}", f"client = {_call('anthropic.Anthropic', client)}"]
    if vertex:
        # The SDK moves the model into the URL, as LiteLLM does.
        client = {"project_id": _project(request), "region": _location(request)}
        if request.api_base is not None:
            client["base_url"] = _url_py(f"{request.api_base.rstrip('/')}/v1", request)
        setup = [
            f"# Signs in with the service-account key file named by {GOOGLE_CREDENTIALS_VAR} (google-auth).",
            f"client = {_call('AnthropicVertex', client)}",
        ]
    kwargs: dict[str, Any] = {"model": body.pop("model")}
    if "system" in body:
        kwargs["system"] = body.pop("system")
    kwargs["messages"] = body.pop("messages")
    body.pop("stream")
    extra = {k: v for k, v in body.items() if k not in _ANTHROPIC_KWARGS}
    if vertex:
        # As LiteLLM sends it (the SDK's own default differs between its versions); extra_body wins.
        extra["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    kwargs.update({k: v for k, v in body.items() if k in _ANTHROPIC_KWARGS})
    kwargs["stream"] = True
    if headers := _headers_code(request):
        kwargs["extra_headers"] = headers
    if extra:
        kwargs["extra_body"] = extra
    return "\n".join(
        [
            *_comment(untranslated(request)),
            *_python_head(request),
            "",
            "from anthropic import AnthropicVertex" if vertex else "import anthropic",
            "",
            *_attached_helper(request, attachments_dir),
            *setup,
            f"stream = {_call('client.messages.create', kwargs)}",
            "for event in stream:",
            '    if event.type == "content_block_delta" and event.delta.type == "text_delta":',
            '        print(event.delta.text, end="", flush=True)',
            "print()",
            "",
        ]
    )


def boto3_snippet(request: SentRequest) -> str:
    """ConverseStream with boto3, which signs with the standard AWS variables or the account's profile."""
    body = _bedrock_body(request)
    client: dict[str, Any] = {"region_name": _region(request)}
    if request.api_base is not None:
        client["endpoint_url"] = _url_py(request.api_base.rstrip("/"), request)
    if request.aws_profile:
        setup = [
            f"session = {_call('boto3.Session', {'profile_name': request.aws_profile})}",
            f"client = {_call('session.client', {'service_name': 'bedrock-runtime', **client})}",
        ]
    else:
        setup = [
            f"# Signs with {', '.join(AWS_KEY_VARS)} (and {AWS_SESSION_VAR} when set) from the environment.",
            f"client = {_call('boto3.client', {'service_name': 'bedrock-runtime', **client})}",
        ]
    if headers := _headers_code(request):
        # boto3 takes no extra headers per call: they are added to the request before it is signed.
        setup += [
            "",
            "",
            "def add_headers(request, **_):",
            f"    for name, value in {_py(headers, 1)}.items():",
            "        request.headers[name] = value",
            "",
            "",
            'client.meta.events.register("before-sign.bedrock-runtime.ConverseStream", add_headers)',
        ]
    kwargs = {"modelId": request.model, **body}
    return "\n".join(
        [
            *_comment(untranslated(request)),
            *(["import os", ""] if request.secret_headers or request.url_password else []),
            "import boto3",
            "",
            *setup,
            f"response = {_call('client.converse_stream', kwargs)}",
            'for event in response["stream"]:',
            '    if "contentBlockDelta" in event:',
            '        print(event["contentBlockDelta"]["delta"].get("text", ""), end="", flush=True)',
            "print()",
            "",
        ]
    )


def _url_parts(url: str, request: SentRequest) -> tuple[str, str] | None:
    """(up to the user name, from the "@" on) when the password goes between them, else None."""
    if not request.url_password:
        return None
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    user, at, host = netloc.rpartition("@")
    if not (sep and at):
        return None
    return f"{scheme}://{user}:", f"@{host}{slash}{path}"


def _url_py(url: str, request: SentRequest) -> Any:
    parts = _url_parts(url, request)
    if parts is None:
        return url
    return _Code(f'{_py_inline(parts[0])} + os.environ["{URL_PASSWORD_VAR}"] + {_py_inline(parts[1])}')


def _url_sh(url: str, request: SentRequest) -> str:
    parts = _url_parts(url, request)
    if parts is None:
        return _sh(url)
    return f'{_sh(parts[0])}"${{{URL_PASSWORD_VAR}}}"{_sh(parts[1])}'


def _key_code(request: SentRequest) -> Any:
    return _Code(f'os.environ["{key_env_var(request.provider_id)}"]') if request.key_sent else PLACEHOLDER_KEY


def _headers_code(request: SentRequest) -> dict[str, Any]:
    headers: dict[str, Any] = dict(request.headers)
    for name in request.secret_headers:
        headers[name] = _Code(f'os.environ["{header_env_var(name)}"]')
    return headers


def _call(function: str, kwargs: dict[str, Any]) -> str:
    lines = [f"{function}("]
    lines += [f"{_INDENT}{name}={_py(value, 1)}," for name, value in kwargs.items()]
    lines.append(")")
    return "\n".join(lines)


def _py(value: Any, depth: int = 0) -> str:
    """`value` as a Python expression, on one line when it fits."""
    inline = _py_inline(value)
    if "\n" not in inline and len(inline) + len(_INDENT) * depth <= _INLINE_WIDTH:
        return inline
    pad, end = _INDENT * (depth + 1), _INDENT * depth
    if isinstance(value, dict) and value:
        items = [f"{pad}{_py_inline(str(k))}: {_py(v, depth + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{end}}}"
    if isinstance(value, (list, tuple)) and value:
        items = [f"{pad}{_py(v, depth + 1)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{end}]"
    return inline


def _py_inline(value: Any) -> str:
    if isinstance(value, _Code):
        return str(value)
    if isinstance(value, _File):
        read = f"attached({_py_inline(value.name)})"
        return f"{_py_inline(value.prefix)} + {read}" if value.prefix else read
    if isinstance(value, str):
        text = repr(value)  # escapes quotes, backslashes, newlines and invisible characters
        # repr quotes with ' unless the text holds one; " is the house style when it is free.
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in value else text
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py_inline(str(k))}: {_py_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py_inline(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as Python")


# --- curl ----------------------------------------------------------------------------------------


def curl_snippet(request: SentRequest, attachments_dir: str | None = None) -> str:
    wire = wire_format(request.provider_id)
    parts = [f"curl -sS -N {_url_sh(wire_url(request), request)}", _sh_header("Content-Type", "application/json")]
    key = key_env_var(request.provider_id)
    head = [*_comment(untranslated(request))]
    if wire == "anthropic":
        parts.append(_sh_header_var("x-api-key", key) if request.key_sent else _sh_header("x-api-key", PLACEHOLDER_KEY))
        parts.append(_sh_header("anthropic-version", ANTHROPIC_VERSION))
    elif wire == "gemini":
        parts.append(_sh_header_var("x-goog-api-key", key))  # never ?key= in the URL
    elif wire == "azure":
        parts.append(_sh_header_var("api-key", key))
    elif wire == "vertex":
        head += _comment(
            "The access token of your gcloud login; for the account's service account, first run: gcloud auth"
            f' activate-service-account --key-file="${GOOGLE_CREDENTIALS_VAR}"'
        )
        parts.append('-H "Authorization: Bearer $(gcloud auth print-access-token)"')
    elif wire == "bedrock":
        head += _bedrock_curl_head(request)
        region = _region(request)
        access, secret = AWS_KEY_VARS
        parts += [f"--aws-sigv4 {_sh(f'aws:amz:{region}:bedrock')}", f'--user "${{{access}}}:${{{secret}}}"']
        parts.append('"${session_token[@]}"')
    elif request.key_sent:
        parts.append(_sh_header_var("Authorization", key, prefix="Bearer "))
    else:
        parts.append(_sh_header("Authorization", f"Bearer {PLACEHOLDER_KEY}"))
    parts += [_sh_header(name, value) for name, value in request.headers.items()]
    parts += [_sh_header_var(name, header_env_var(name)) for name in request.secret_headers]
    body = _json(wire_body(request))
    pieces = _FILE_IN_JSON.split(body)  # text, then (name, prefix, text) per attached file
    if len(pieces) == 1:
        parts.append(f"--data-raw {_sh(body)}")
        return "\n".join([*head, " \\\n  ".join(parts)]) + "\n"
    # The body is written to curl's stdin, each file base64-encoded into it: a command line could
    # not hold a photo (Linux takes 128 KiB per argument).
    parts.append("--data-binary @-")
    if attachments_dir:
        folder = f"${{{ATTACHMENTS_VAR}:-{_sh(attachments_dir)}}}"
    else:
        folder = f'${{{ATTACHMENTS_VAR}:?"set {ATTACHMENTS_VAR} to the folder of ModelDesk\'s attachments"}}'
    lines = [
        *head,
        "# The files attached to the conversation, where ModelDesk keeps them (<folder>/<ab>/<SHA-256>.<ext>).",
        f"ATTACHMENTS={folder}",
        "attached() { base64 < \"$ATTACHMENTS/$1\" | tr -d '\\n'; }",
        "{",
    ]
    text = pieces[0]
    for at in range(1, len(pieces), 3):
        name, prefix, following = pieces[at : at + 3]
        lines.append(f"  printf '%s' {_sh(text + prefix)}")
        lines.append(f"  attached {_sh(name)}")
        text = following
    lines.append(f"  printf '%s' {_sh(text)}")
    lines.append("} | " + " \\\n  ".join(parts))
    return "\n".join(lines) + "\n"


def _bedrock_curl_head(request: SentRequest) -> list[str]:
    """curl signs with SigV4 itself; the lines before it set the credentials' variables."""
    lines = _comment(
        "curl signs the request (SigV4). Older curls are reported to sign the model id's %3A wrongly (AWS"
        " answers 403, the signature does not match): use curl 8.9 or newer, or the boto3 tab. The answer"
        " is AWS's binary event stream."
    )
    if request.aws_profile:
        profile = _sh(request.aws_profile)
        lines += [
            "# The keys of the account's AWS profile (AWS CLI v2).",
            f'eval "$(aws configure export-credentials --profile {profile} --format env)"',
        ]
    # Temporary credentials carry a session token, sent (and signed) as a header.
    lines += [
        "session_token=()",
        f'if [ -n "${{{AWS_SESSION_VAR}:-}}" ]; then session_token=(-H "x-amz-security-token: ${{{AWS_SESSION_VAR}}}"); fi',
    ]
    return lines


def _comment(text: str) -> list[str]:
    """`text` as comment lines (the same in Python and in the shell); none for no text."""
    return [f"# {line}" for line in textwrap.wrap(text, 96)]


def _json(body: dict[str, Any]) -> str:
    text = json.dumps(body, ensure_ascii=False, indent=2)
    # Characters that are invisible or reorder text on screen are written as escapes.
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _sh(text: str) -> str:
    """`text` as one shell word: single-quoted, so nothing in it is expanded."""
    return "'" + text.replace("'", "'\\''") + "'"


def _sh_header(name: str, value: str) -> str:
    return f"-H {_sh(f'{name}: {value}')}"


def _sh_header_var(name: str, var: str, *, prefix: str = "") -> str:
    """A header whose value is read from the environment variable `var` when the command runs."""
    literal = f"{name}: {prefix}"
    if _SHELL_PLAIN.fullmatch(literal):
        return f'-H "{literal}${{{var}}}"'
    return f'-H {_sh(literal)}"${{{var}}}"'


def _env_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "MODELDESK"
