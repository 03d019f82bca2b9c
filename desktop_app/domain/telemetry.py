"""Telemetry export: its settings and what one span says about one request attempt.

The span follows the OpenTelemetry GenAI semantic conventions (client inference span, "chat"):
the prompt, the reply and the system prompt go in only with `include_content`, as the
conventions' opt-in `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions`
(JSON text); a key never goes in at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from desktop_app.domain.chat import ChatMessage, ChatParams, ReplyMetrics
from desktop_app.domain.http_fields import FRAMING_HEADERS, check_base_url, check_header_bytes, is_credential_header

# The keyring entry of the credential headers' values ("telemetry/headers", see header_secrets).
SECRET_ENTRY_ID = "telemetry"
TRACES_PATH = "/v1/traces"
SCOPE_NAME = "modeldesk"
# A ModelDesk event (the conventions name only a TTFT metric): when the first token arrived.
TTFT_EVENT = "gen_ai.first_token"
# ModelDesk's own attributes: which account of the user's sent the request.
ACCOUNT_ID = "modeldesk.account.id"
ACCOUNT_LABEL = "modeldesk.account.label"

# gen_ai.provider.name's well-known values, for the providers that have one.
_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "xai": "x_ai",
}


class TelemetrySettings(BaseModel):
    """Settings > Telemetry export. Off by default: nothing is sent anywhere unless the user turns it on.

    `headers` holds plain headers; credential-like ones keep only their names here
    (`secret_headers`), their values live in the keyring.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    enabled: bool = False
    endpoint: str = ""
    headers: dict[str, str] = {}
    secret_headers: tuple[str, ...] = ()
    include_content: bool = False

    @field_validator("endpoint")
    @classmethod
    def _sendable_endpoint(cls, value: str) -> str:
        return check_endpoint(value) if value.strip() else ""

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if is_credential_header(name):
                raise ValueError(f"the {name} header holds a credential, which belongs in the keyring")
        return dict(check_export_header(n, v) for n, v in value.items())

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.endpoint)


def check_endpoint(value: str) -> str:
    """The endpoint as a base URL is checked; ValueError with one sentence."""
    try:
        return check_base_url(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("the base URL", "the endpoint URL", 1)) from None


def check_export_header(name: str, value: str) -> tuple[str, str]:
    """A header for the collector (Authorization allowed: collectors take their tokens there)."""
    name, value = check_header_bytes(name, value)
    if name.lower() in FRAMING_HEADERS:
        raise ValueError(f"the {name} header is set by the HTTP client for each request; remove it")
    return name, value


def split_headers(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, credential) headers: the second kind is kept in the keyring."""
    plain = {n: v for n, v in headers.items() if not is_credential_header(n)}
    return plain, {n: v for n, v in headers.items() if is_credential_header(n)}


def traces_url(endpoint: str) -> str:
    """Where spans are posted: the endpoint as given when it names /v1/traces, else with it appended
    (as OTEL_EXPORTER_OTLP_ENDPOINT does)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def provider_name(provider_id: str) -> str:
    return _PROVIDER_NAMES.get(provider_id, provider_id)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request attempt as the dispatcher saw it: what a span is made of."""

    provider_id: str
    account_id: str
    account_label: str
    base_url: str
    model: str
    params: ChatParams
    status: str  # ok, failed, stopped
    start_ns: int
    end_ns: int
    metrics: ReplyMetrics = field(default_factory=ReplyMetrics)
    finish_reason: str = ""
    error_kind: str = ""
    response_model: str = ""
    messages: Sequence[ChatMessage] = ()
    reply: str = ""
    trace_id: bytes = b""  # shared by the attempts of one reply; b"": a trace of its own


AttrValue = str | bool | int | float | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, AttrValue]


@dataclass(frozen=True, slots=True)
class Span:
    name: str
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    start_ns: int
    end_ns: int
    attributes: dict[str, AttrValue]
    events: tuple[SpanEvent, ...] = ()
    error: str = ""  # the status message when the attempt failed; "" = unset


def span_of(attempt: Attempt, *, include_content: bool, trace_id: bytes, span_id: bytes) -> Span:
    """The GenAI client span of one attempt; content only with `include_content`."""
    attrs: dict[str, AttrValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(attempt.provider_id),
        "gen_ai.system": provider_name(attempt.provider_id),  # the name before semconv 1.37
        "gen_ai.request.model": attempt.model,
        ACCOUNT_ID: attempt.account_id,
        ACCOUNT_LABEL: attempt.account_label,
        "modeldesk.attempt.status": attempt.status,
    }
    host, port = _server(attempt.base_url)
    if host:
        attrs["server.address"] = host
        if port:
            attrs["server.port"] = port
    params = attempt.params
    for name, value in (
        ("gen_ai.request.temperature", params.temperature),
        ("gen_ai.request.top_p", params.top_p),
        ("gen_ai.request.max_tokens", params.max_tokens or params.max_completion_tokens),
        ("gen_ai.request.top_k", params.top_k),
        ("gen_ai.request.presence_penalty", params.presence_penalty),
        ("gen_ai.request.frequency_penalty", params.frequency_penalty),
        ("gen_ai.request.seed", params.seed),
    ):
        if value is not None:
            attrs[name] = value
    if params.stop:
        attrs["gen_ai.request.stop_sequences"] = tuple(params.stop)
    metrics = attempt.metrics
    if attempt.status == "ok":
        attrs["gen_ai.response.model"] = attempt.response_model or attempt.model
    if attempt.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (attempt.finish_reason,)
    if metrics.prompt_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = metrics.prompt_tokens
    if metrics.completion_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = metrics.completion_tokens
    if metrics.cache_read_tokens is not None:
        attrs["gen_ai.usage.cache_read.input_tokens"] = metrics.cache_read_tokens
    if metrics.cache_write_tokens is not None:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = metrics.cache_write_tokens
    if attempt.error_kind:
        attrs["error.type"] = attempt.error_kind
    elif attempt.status == "stopped":
        attrs["error.type"] = "cancelled"
    if include_content:
        attrs.update(_content(attempt))
    events: tuple[SpanEvent, ...] = ()
    if metrics.ttft_s is not None:
        at = attempt.start_ns + int(metrics.ttft_s * 1e9)
        events = (SpanEvent(TTFT_EVENT, at, {"gen_ai.response.time_to_first_token": metrics.ttft_s}),)
    return Span(
        name=f"chat {attempt.model}",
        trace_id=trace_id,
        span_id=span_id,
        start_ns=attempt.start_ns,
        end_ns=max(attempt.end_ns, attempt.start_ns),
        attributes=attrs,
        events=events,
        error=str(attrs.get("error.type", "")),
    )


def _content(attempt: Attempt) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    if attempt.params.system_prompt:
        out["gen_ai.system_instructions"] = json.dumps([{"type": "text", "content": attempt.params.system_prompt}])
    inputs = [{"role": m.role, "parts": [{"type": "text", "content": m.content}]} for m in attempt.messages]
    out["gen_ai.input.messages"] = json.dumps(inputs, ensure_ascii=False)
    if attempt.reply or attempt.status == "ok":
        output: dict[str, object] = {"role": "assistant", "parts": [{"type": "text", "content": attempt.reply}]}
        if attempt.finish_reason:
            output["finish_reason"] = attempt.finish_reason
        out["gen_ai.output.messages"] = json.dumps([output], ensure_ascii=False)
    return out


def _server(base_url: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        return parts.hostname or "", parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return "", None
