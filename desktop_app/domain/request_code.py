"""A stored request as code to run elsewhere: Python with LiteLLM, with the provider's SDK, and curl.

Each snippet sends the body the app sent (`request_wire`), streaming as the app did. Keys and
credential headers appear only as environment-variable references: `os.environ["OPENAI_API_KEY"]` in
Python, `$OPENAI_API_KEY` in the shell. The snippets read each attached file from the attachments
folder (`MODELDESK_ATTACHMENTS`, else the folder given) and send it base64-encoded, in the provider's
own blocks where the snippet speaks its wire format (Anthropic's image and document blocks, Ollama's
`images`).

Cloud accounts are written as LiteLLM sends to them: Azure OpenAI's deployment URL with the api-version
and the key in `api-key`; Claude on Vertex AI's streamRawPredict with a Google access token (the
snippets read the service-account key file named by GOOGLE_APPLICATION_CREDENTIALS, curl asks gcloud);
Bedrock's ConverseStream, signed with SigV4 from the standard AWS variables or the account's profile.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from desktop_app.domain.providers import PROVIDERS
from desktop_app.domain.request_wire import (
    ATTACHED_FILE_IN_JSON,
    VERTEX_ANTHROPIC_VERSION,
    AttachedFile,
    anthropic_body,
    aws_region,
    azure_api_version,
    bedrock_body,
    reads_attachments,
    speaks_anthropic,
    untranslated,
    vertex_location,
    vertex_project,
    wire_body,
    wire_format,
    wire_url,
    with_files,
)
from desktop_app.domain.sent_requests import SentRequest

# What LiteLLM sends as the key to a server that needs none (see services/chat/llm.py).
PLACEHOLDER_KEY = "no-key"
ANTHROPIC_VERSION = "2023-06-01"
URL_PASSWORD_VAR = "BASE_URL_PASSWORD"  # the password of the base URL's user info, when it has one
ATTACHMENTS_VAR = "MODELDESK_ATTACHMENTS"  # the attachments folder, read by snippets that send files
GOOGLE_CREDENTIALS_VAR = "GOOGLE_APPLICATION_CREDENTIALS"  # the path of a service-account key file
AWS_KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
AWS_SESSION_VAR = "AWS_SESSION_TOKEN"  # sent when set (temporary credentials)
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
# temperature, top_p and top_k are not keyword arguments of every anthropic SDK version: they go in extra_body.
_ANTHROPIC_KWARGS = frozenset({"max_tokens", "stop_sequences", "metadata", "tools", "tool_choice"})


@dataclass(frozen=True, slots=True)
class Snippet:
    title: str  # the tab's name
    language: str  # "python" or "shell"
    text: str


class _Code(str):
    """Python source put into a snippet as it is (an environment lookup), not as a string literal."""

    __slots__ = ()


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


def request_snippets(request: SentRequest, attachments_dir: str | None = None) -> list[Snippet]:
    """The snippets for `request`, in tab order: LiteLLM, the provider's SDK where one applies, curl.
    `attachments_dir`: where attached files are kept (else the snippets need `ATTACHMENTS_VAR` set)."""
    snippets = [Snippet("LiteLLM", "python", litellm_snippet(request, attachments_dir))]
    wire = wire_format(request.provider_id)
    if speaks_anthropic(wire):
        snippets.append(Snippet("Anthropic SDK", "python", anthropic_snippet(request, attachments_dir)))
    elif wire in ("openai", "ollama", "azure"):
        snippets.append(Snippet("OpenAI SDK", "python", openai_snippet(request, attachments_dir)))
    elif wire == "bedrock":
        snippets.append(Snippet("boto3", "python", boto3_snippet(request)))
    snippets.append(Snippet("curl", "shell", curl_snippet(request, attachments_dir)))
    return snippets


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
    kwargs: dict[str, Any] = {"model": request.litellm_model, "messages": with_files(request.messages)}
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
            "vertex_project": vertex_project(request),
            "vertex_location": vertex_location(request),
            # The service-account key file's JSON: LiteLLM signs in with it.
            "vertex_credentials": _Code(f'Path(os.environ["{GOOGLE_CREDENTIALS_VAR}"]).read_text()'),
        }
    if wire == "bedrock":
        if request.aws_profile:
            return {"aws_region_name": aws_region(request), "aws_profile_name": request.aws_profile}
        return {
            "aws_region_name": aws_region(request),
            **{name.lower(): _Code(f'os.environ["{name}"]') for name in AWS_KEY_VARS},
            AWS_SESSION_VAR.lower(): _Code(f'os.environ.get("{AWS_SESSION_VAR}")'),
        }
    credentials: dict[str, Any] = {"api_key": _key_code(request)}
    if wire == "azure":
        credentials["api_version"] = azure_api_version(request)
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
            "api_version": azure_api_version(request),
            "api_key": _key_code(request),
        }
    kwargs: dict[str, Any] = {"model": request.model, "messages": with_files(request.messages)}
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
    body = anthropic_body(request)
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
        client = {"project_id": vertex_project(request), "region": vertex_location(request)}
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
    body = bedrock_body(request)
    client: dict[str, Any] = {"region_name": aws_region(request)}
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
    if isinstance(value, AttachedFile):
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
        region = aws_region(request)
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
    pieces = ATTACHED_FILE_IN_JSON.split(body)  # text, then (name, prefix, text) per attached file
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
