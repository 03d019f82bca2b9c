"""The JSON body and URL LiteLLM sends for a stored request, per wire format.

Attached files are kept in a request by their SHA-256 (`data:image/png;sha256,<hex>`); in a body each
is an `AttachedFile` token, which the snippets fill in with code that reads the file and
`resolve_files` fills in with the file's data.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from desktop_app.domain.attachments import stored_name
from desktop_app.domain.providers import AWS_REGION, AZURE_API_VERSION, VERTEX_LOCATION
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tool_code import TOOL_PARAMS, anthropic_tool_message, anthropic_tool_params

GEMINI_API_VERSION = "v1beta"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"  # what LiteLLM puts in the body of Claude on Vertex AI
MISSING_PROJECT = "PROJECT_ID"  # stands for a Vertex AI project the request did not record
_MARKER = re.compile(r"data:([\w.+-]+/[\w.+-]+);sha256,([0-9a-f]{64})")
# OpenAI-style parameters by their name in Gemini's generationConfig.
_GEMINI_CONFIG = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "stop": "stop_sequences",
}
# OpenAI-style parameters by their name in Anthropic's Messages API.
_ANTHROPIC_NAMES = {"stop": "stop_sequences", "max_completion_tokens": "max_tokens"}
# The reasoning efforts LiteLLM sends to Ollama as think: true (other models than gpt-oss).
_OLLAMA_THINKING_EFFORTS = frozenset({"low", "medium", "high"})
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


class AttachedFile(str):
    """An attached file's data in a body: `prefix` (a data URL's head, or nothing), then the base64 of
    the stored file `name` (relative to the attachments folder). As text, a token that curl's JSON is
    cut at."""

    name: str
    prefix: str
    media_type: str

    def __new__(cls, name: str, prefix: str, media_type: str) -> AttachedFile:
        token = super().__new__(cls, f"\ufffeattachment:{name}:{prefix}\ufffe")
        token.name, token.prefix, token.media_type = name, prefix, media_type
        return token

    def bare(self) -> AttachedFile:
        """The base64 alone, without the data URL's head."""
        return AttachedFile(self.name, "", self.media_type)


# An `AttachedFile` in the JSON text of a body, where curl's body is cut: "\ufffe" is a noncharacter,
# so no text holds one.
ATTACHED_FILE_IN_JSON = re.compile(r"\\ufffeattachment:([^:\\]+):([^\\]*)\\ufffe")


def _file_of(url: str) -> Any:
    """A stored data URL (`data:<type>;sha256,<hex>`) as the file it stands for; anything else as is."""
    found = _MARKER.fullmatch(url)
    if found is None:
        return url
    return AttachedFile(stored_name(found[2], found[1]), f"data:{found[1]};base64,", found[1])


def with_files(messages: Any) -> list[dict[str, Any]]:
    """The messages with each stored file's data URL as an `AttachedFile` (content parts copied)."""
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
    if isinstance(value, AttachedFile):
        return True
    if isinstance(value, dict):
        return any(_has_files(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_files(v) for v in value)
    return False


def reads_attachments(request: SentRequest) -> bool:
    """The snippets of `request` read attached files from the attachments folder."""
    return _has_files(with_files(request.messages))


def resolve_files(value: Any, read: Callable[[str], bytes]) -> Any:
    """`value` (a body from `wire_body`) with each attached file's data filled in from `read(name)`,
    as the snippets send it."""
    if isinstance(value, AttachedFile):
        return value.prefix + base64.b64encode(read(value.name)).decode()
    if isinstance(value, dict):
        return {k: resolve_files(v, read) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_files(v, read) for v in value]
    return value


def _data_source(url: Any) -> tuple[str, Any] | None:
    """(media type, base64 data) of an attached file or an inline data URL; None for a web URL."""
    if isinstance(url, AttachedFile):
        return url.media_type, url.bare()
    head, sep, data = str(url).partition(";base64,")
    if sep and head.startswith("data:"):
        return head[5:], data
    return None


def _file_url(part: dict[str, Any]) -> Any:
    return part["image_url"]["url"] if part.get("type") == "image_url" else part["file"]["file_data"]


def wire_format(provider_id: str) -> str:
    """The wire format LiteLLM speaks to this provider: "openai", "anthropic", "ollama", "gemini", or a
    cloud's own: "azure" (OpenAI's body at a deployment), "vertex" (Anthropic's body), "bedrock" (Converse)."""
    own = ("anthropic", "ollama", "gemini", "azure", "vertex", "bedrock")
    return provider_id if provider_id in own else "openai"


def speaks_anthropic(wire: str) -> bool:
    return wire in ("anthropic", "vertex")


def azure_api_version(request: SentRequest) -> str:
    return request.api_version or AZURE_API_VERSION


def vertex_project(request: SentRequest) -> str:
    return request.project or MISSING_PROJECT


# Requests stored before the location and region were kept: the default endpoint's host tells them.
_VERTEX_HOST = re.compile(r"https://([a-z0-9-]+)-aiplatform\.googleapis\.com")
_BEDROCK_HOST = re.compile(r"https://bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com")


def vertex_location(request: SentRequest) -> str:
    found = _VERTEX_HOST.fullmatch(request.base_url.rstrip("/"))
    return request.location or (found[1] if found else VERTEX_LOCATION)


def aws_region(request: SentRequest) -> str:
    found = _BEDROCK_HOST.fullmatch(request.base_url.rstrip("/"))
    return request.region or (found[1] if found else AWS_REGION)


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
        return f"{base}/openai/deployments/{request.model}/chat/completions?api-version={azure_api_version(request)}"
    if wire == "vertex":
        where = f"projects/{vertex_project(request)}/locations/{vertex_location(request)}"
        return f"{base}/v1/{where}/publishers/anthropic/models/{request.model}:streamRawPredict"
    if wire == "bedrock":
        return f"{base}/model/{quote(request.model, safe='')}/converse-stream"  # "v1:0" as "v1%3A0"
    return f"{base}/chat/completions"


def wire_body(request: SentRequest) -> dict[str, Any]:
    """The JSON body the provider is sent for `request` (as LiteLLM writes it)."""
    wire = wire_format(request.provider_id)
    if wire == "anthropic":
        return anthropic_body(request)
    if wire == "ollama":
        return _ollama_body(request)
    if wire == "gemini":
        return _gemini_body(request)
    if wire == "vertex":
        # The model is in the URL; the version is Vertex AI's.
        body = {k: v for k, v in anthropic_body(request).items() if k != "model"}
        return {"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body}
    if wire == "bedrock":
        return bedrock_body(request)
    body = {"model": request.model, "messages": with_files(request.messages)}
    body.update(request.params)
    body["stream"] = True
    if request.stream_options:
        body["stream_options"] = dict(request.stream_options)
    return body


def anthropic_body(request: SentRequest) -> dict[str, Any]:
    system = [{"type": "text", "text": m["content"]} for m in request.messages if m["role"] == "system"]
    messages: list[dict[str, Any]] = []
    for m in with_files(request.messages):
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
    if speaks_anthropic(wire) and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
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


def bedrock_body(request: SentRequest) -> dict[str, Any]:
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
    for m in with_files(request.messages):
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
    for m in with_files(request.messages):
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
