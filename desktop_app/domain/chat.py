"""Chat requests, the events a streamed reply produces, and the metrics a reply ends with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.attachments import AttachedFile, content_parts
from desktop_app.domain.errors import DomainError
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.structured_output import schema_problem
from desktop_app.domain.tools import ToolCall, ToolCallDelta, ToolCalls, ToolSpec, tool_choice_option


class ResponseFormat(StrEnum):
    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


class ReasoningEffort(StrEnum):
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Anthropic's floor for an extended-thinking budget (its API refuses less).
MIN_THINKING_BUDGET = 1024


class ChatParams(BaseModel):
    """What the user set in the parameters panel. None means "the server's default".

    `preset` names the preset the conversation started from ("" for none): a record, never sent.
    """

    model_config = ConfigDict(frozen=True)

    system_prompt: str = ""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    reasoning_effort: ReasoningEffort | None = None
    thinking_budget: int | None = Field(default=None, ge=MIN_THINKING_BUDGET)  # Anthropic's extended thinking
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: ResponseFormat = ResponseFormat.TEXT
    json_schema: str = ""  # the schema text, used with JSON_SCHEMA
    tools: tuple[ToolSpec, ...] = ()  # functions the model may call
    tool_choice: str = "auto"  # auto, none, required, or the name of one function
    parallel_tool_calls: bool = True  # False: at most one call per reply
    # Anthropic prompt caching: breakpoints on the system prompt and the history (see prompt_cache.py).
    cache_prompt: bool = False
    preset: str = ""

    @field_validator("stop", mode="before")
    @classmethod
    def _drop_empty_stops(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return tuple(s for s in value if s)

    def request_options(self) -> dict[str, Any]:
        """The OpenAI-style request parameters these settings stand for (system prompt excluded)."""
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.top_p is not None:
            options["top_p"] = self.top_p
        if self.top_k is not None:
            options["top_k"] = self.top_k
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        if self.max_completion_tokens is not None:
            options["max_completion_tokens"] = self.max_completion_tokens
        if self.presence_penalty is not None:
            options["presence_penalty"] = self.presence_penalty
        if self.frequency_penalty is not None:
            options["frequency_penalty"] = self.frequency_penalty
        if self.thinking_budget is not None:
            # An explicit budget is what LiteLLM sends when both are given: the effort is left out.
            options["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        elif self.reasoning_effort is not None:
            options["reasoning_effort"] = self.reasoning_effort.value
        if self.stop:
            options["stop"] = list(self.stop)
        if self.seed is not None:
            options["seed"] = self.seed
        if self.response_format is ResponseFormat.JSON_OBJECT:
            options["response_format"] = {"type": "json_object"}
        elif self.response_format is ResponseFormat.JSON_SCHEMA:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": parse_json_schema(self.json_schema)},
            }
        if self.tools:
            options["tools"] = [t.as_openai() for t in self.tools]
            if self.tool_choice != "auto":
                options["tool_choice"] = tool_choice_option(self.tool_choice, self.tools)
            if not self.parallel_tool_calls:
                options["parallel_tool_calls"] = False
        return options


def parse_json_schema(text: str) -> dict[str, Any]:
    """The schema the user typed, as a dict; a clear ValueError when it is not a JSON object or
    not a valid JSON Schema."""
    try:
        schema = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"The JSON schema is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(schema, dict):
        raise ValueError("The JSON schema must be a JSON object.")
    if (problem := schema_problem(schema)) is not None:
        raise ValueError(problem)
    return schema


Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    files: tuple[AttachedFile, ...] = ()  # attached files, with their bytes
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant's calls
    tool_call_id: str = ""  # a tool message: the call it answers

    def as_dict(self, *, documents: bool = True, one_text: bool = False) -> dict[str, Any]:
        """The message as sent; with files, its content is OpenAI-style parts (`documents`: the
        provider takes PDFs as documents; `one_text`: it takes one text per message)."""
        if self.role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        content = content_parts(self.content, self.files, documents=documents, one_text=one_text)
        if self.tool_calls:  # no text with the calls: null, as OpenAI sends it (an empty text is refused)
            return {
                "role": self.role,
                "content": content or None,
                "tool_calls": [c.as_openai() for c in self.tool_calls],
            }
        return {"role": self.role, "content": content}


def answered_calls_only(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The history without the calls the user left unanswered (they wrote on instead): providers refuse
    a call without its result. A reply left with neither text nor calls goes."""
    out: list[ChatMessage] = []
    for position, message in enumerate(messages):
        if message.tool_calls:
            answered = set()
            for later in messages[position + 1 :]:
                if later.role != "tool":
                    break
                answered.add(later.tool_call_id)
            kept = tuple(c for c in message.tool_calls if c.id in answered)
            if not kept and not message.content:
                continue
            message = replace(message, tool_calls=kept)
        out.append(message)
    return out


@dataclass(slots=True)
class ReplyMetrics:
    ttft_s: float | None = None  # time to first token
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None  # request sent -> stream ended
    account_id: str = ""  # which account answered (matters for pools)
    account_label: str = ""
    retries: int = 0  # how many other accounts of a pool were tried first
    reasoning_tokens: int | None = None  # where the provider reports them (part of completion_tokens)
    thinking_s: float | None = None  # first reasoning delta -> first answer delta
    cache_read_tokens: int | None = None  # prompt tokens read from the provider's cache (part of prompt_tokens)
    cache_write_tokens: int | None = None  # prompt tokens written to it (part of prompt_tokens)
    cache_saved_usd: float | None = None  # the cost without the cache minus the cost with it
    backoff_retries: int = 0  # how many times this same account was asked again after a passing failure
    route_label: str = ""  # the route the request went along; `retries` then counts its moves

    def summary(self) -> str:
        """The one-line metrics footer under a reply."""
        parts: list[str] = []
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s * 1000:.0f} ms")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            parts.append(f"{self.prompt_tokens or 0} in / {self.completion_tokens or 0} out tokens")
        if self.cost_usd is not None:
            parts.append(_usd(self.cost_usd))
        if self.latency_s is not None:
            parts.append(f"{self.latency_s:.2f} s total")
        if self.cache_read_tokens or self.cache_write_tokens:
            parts.append(self.cache_summary())
        if self.account_label and self.retries and self.route_label:
            parts.append(f"via {self.account_label} after {_times(self.retries, 'move', 'moves')}")
        elif self.account_label and self.retries:
            parts.append(f"via {self.account_label} after {self.retries} {'retry' if self.retries == 1 else 'retries'}")
        if self.backoff_retries:
            parts.append(f"answered after {_times(self.backoff_retries, 'retry', 'retries')}")
        return " · ".join(parts)

    def cache_summary(self) -> str:
        """ "cache: 1,200 read, 300 written, saved $0.0031", or "" when the cache was not used."""
        if not (self.cache_read_tokens or self.cache_write_tokens):
            return ""
        said = []
        if self.cache_read_tokens:
            said.append(f"{self.cache_read_tokens:,} read")
        if self.cache_write_tokens:
            said.append(f"{self.cache_write_tokens:,} written")
        if self.cache_saved_usd is not None and self.cache_saved_usd > 0:
            said.append(f"saved {_usd(self.cache_saved_usd)}")
        elif self.cache_saved_usd is not None and self.cache_saved_usd < 0:  # a write costs more than plain input
            said.append(f"{_usd(-self.cache_saved_usd)} more to write")
        return "cache: " + ", ".join(said)

    def thinking_summary(self) -> str:
        """What the reasoning block's header says of it: "1,234 tokens, 3.2 s", or ""."""
        parts: list[str] = []
        if self.reasoning_tokens:
            parts.append(f"{self.reasoning_tokens:,} tokens")
        if self.thinking_s is not None:
            parts.append(f"{self.thinking_s:.1f} s")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ReplyMetrics:
        data = data or {}
        defaults = cls()
        return cls(**{k: data.get(k, getattr(defaults, k)) for k in cls.__slots__})


def _usd(amount: float) -> str:
    return f"${amount:.6f}" if amount < 0.01 else f"${amount:.4f}"


def _times(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# --- Stream events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    model: str
    dropped_params: tuple[str, ...] = ()  # parameters the provider does not take, left out
    request: SentRequest | None = None  # what is being sent, to be stored with the reply


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    prompt_tokens: int | None
    completion_tokens: int | None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseHeaders:
    """The provider's response headers (rate limits, organisation), as soon as they are known."""

    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """A pool account (or a target of a route) could not answer before any text came; the request moves on."""

    account_id: str
    account_label: str
    error: DomainError
    metrics: ReplyMetrics = field(default_factory=ReplyMetrics)
    route_label: str = ""  # the route it moves along; "" for a pool

    @property
    def next_step(self) -> str:
        return (
            f"Moving on along route “{self.route_label}”."
            if self.route_label
            else "Trying the next account in the pool."
        )


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should see next to the reply (a budget warning, a skipped account)."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str
    metrics: ReplyMetrics = field(default_factory=ReplyMetrics)


@dataclass(frozen=True, slots=True)
class Failed:
    error: DomainError
    metrics: ReplyMetrics = field(default_factory=ReplyMetrics)


StreamEvent = (
    Started
    | TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | ToolCalls
    | UsageReport
    | ResponseHeaders
    | AttemptFailed
    | Notice
    | Finished
    | Failed
)
