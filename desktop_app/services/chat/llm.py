"""The chat service layer over LiteLLM: one call, a stream of typed events, nothing Qt.

`stream_chat` runs the LiteLLM request on the engine thread (see litellm_engine.py) and hands the
caller's loop batches of events through a small thread-safe mailbox. The caller's loop is woken at
most once per batch, so a 20,000-chunk burst costs the GUI thread a handful of wake-ups, not 20,000.
Closing the returned generator (Stop) cancels the request on the engine loop, which closes the HTTP
stream, so the server stops generating.

Batches are also paced (see `_pace`): after each one the consumer's loop always gets to run
(paint, timers, input) before the next is handed over, and the next comes no sooner than
`MIN_BATCH_INTERVAL_S`, or later if the consumer's thread spent more CPU on the last batch.
Without this a consumer slower than the engine never yields: `take()` finds the next batch
already waiting, so the loop is starved exactly as by LiteLLM itself, and each batch it digests
holds the GIL the engine thread needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from desktop_app.domain.accounts import Account
from desktop_app.domain.attachments import DOCUMENT_PROVIDERS, ONE_TEXT_PROVIDERS
from desktop_app.domain.chat import (
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    Notice,
    ReasoningDelta,
    ReplyMetrics,
    ResponseHeaders,
    Started,
    StreamEvent,
    TextDelta,
    UsageReport,
)
from desktop_app.domain.cloud_secrets import parse_aws_credentials, service_account_project
from desktop_app.domain.errors import DomainError, ServerError
from desktop_app.domain.param_support import taken_params
from desktop_app.domain.prompt_cache import takes_cache_control, with_cache_breakpoints
from desktop_app.domain.sent_requests import SentRequest, without_url_password
from desktop_app.domain.text import without_bidi_controls
from desktop_app.domain.tools import ToolCallAssembler, ToolCallDelta, ToolCalls
from desktop_app.services.chat.preflight import account_refusal, params_refusal
from desktop_app.services.errors import map_error
from desktop_app.services.litellm_engine import (
    LiteLLMEngine,
    estimate_tokens,
    list_local_model,
    release_duplicate_tables,
)

log = logging.getLogger(__name__)

# A key is needed by the OpenAI client even for local servers that ignore it.
_PLACEHOLDER_KEY = "no-key"
_END = object()
# Pacing of batches to the consumer: at most ~30 a second, and the consumer's thread spends at
# most about 1/CONSUMER_CPU_SHARE_INVERSE of its time on them, leaving the GIL to the engine.
# The CPU time is the consumer thread's while it handled the batch, which can include other work
# on its loop (a garbage collection, say) if it awaited something: hence the ceiling.
MIN_BATCH_INTERVAL_S = 1 / 30
MAX_BATCH_INTERVAL_S = 0.5
CONSUMER_CPU_SHARE_INVERSE = 20
# LiteLLM cuts `stop` to OpenAI's limit for every provider, without a word; we cut it and say so.
MAX_STOP_SEQUENCES = 4
_STREAM_OPTIONS = {"include_usage": True}


def litellm_model_name(account: Account, model: str) -> str:
    return f"{account.provider.litellm_prefix}/{model}"


def _response_headers(source: Any) -> dict[str, str]:
    """Provider response headers LiteLLM kept (on a stream wrapper, or on an exception)."""
    headers = getattr(source, "litellm_response_headers", None)
    if not headers:
        hidden = getattr(source, "_hidden_params", None) or {}
        headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    try:
        return {str(k): str(v) for k, v in dict(headers or {}).items()}
    except (TypeError, ValueError):
        return {}


def litellm_api_base(account: Account) -> str | None:
    """The api_base LiteLLM needs: always for local/proxy servers, else only when overridden."""
    if account.provider.sends_api_base or account.base_url:
        return account.effective_base_url
    return None


# What a local server's reply costs, as LiteLLM's per-request custom pricing takes it.
_FREE = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}


def _local_pricing(account: Account) -> dict[str, float]:
    """LiteLLM prices every stream as it returns it, for its loggers (ModelDesk prices replies
    itself, in `_cost`). For a model its map does not list, as a local server's usually are not,
    that lookup tries the map's every generalisation first: about 1 ms of the engine thread per
    request, which the columns of a comparison spend one after the other before their first
    tokens. A local server's reply is free, so saying so skips the lookup; cloud models keep it."""
    return _FREE if account.provider.is_local else {}


def _credentials(account: Account, api_key: str | None) -> dict[str, Any]:
    """The key as LiteLLM's adapter takes it: a Vertex AI service-account key as vertex_credentials
    (LiteLLM signs in with it), never as api_key, which would be sent as a bearer token."""
    if account.provider.secret_kind == "google":
        return {"vertex_credentials": api_key}
    if account.provider.secret_kind == "aws":  # None: the account's AWS profile signs
        return parse_aws_credentials(api_key) if api_key else {}
    return {"api_key": api_key or _PLACEHOLDER_KEY}


class _Mailbox:
    """Events from the engine thread to the consumer's loop, delivered in batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._wake_pending = False
        self._wakeup = asyncio.Event()

    def put(self, item: Any) -> None:  # engine thread
        with self._lock:
            self._items.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wakeup.set)

    async def take(self) -> list[Any]:  # consumer loop
        while True:
            with self._lock:
                if self._items:
                    items, self._items = self._items, []
                    return items
                self._wake_pending = False
                self._wakeup.clear()
            await self._wakeup.wait()


@dataclass(slots=True)
class _Tally:
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    first_reasoning: float | None = None
    first_text: float | None = None
    reasoning_tokens: int | None = None
    content_chunks: int = 0
    text: list[str] = field(default_factory=list)  # the reply, for a server that reports no usage
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    finish_reason: str = "stop"

    def metrics(self, cost: float | None, saved: float | None = None) -> ReplyMetrics:
        end = time.perf_counter()
        completion = self.completion_tokens if self.completion_tokens is not None else (self.content_chunks or None)
        tps = None
        if self.first_token is not None and completion:
            span = end - self.first_token
            if span > 0:
                tps = completion / span
        thinking = None
        if self.first_reasoning is not None:
            thinking = (self.first_text or end) - self.first_reasoning
        return ReplyMetrics(
            ttft_s=None if self.first_token is None else self.first_token - self.started,
            tokens_per_s=tps,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=cost,
            latency_s=end - self.started,
            reasoning_tokens=self.reasoning_tokens,
            thinking_s=thinking,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_saved_usd=saved,
        )


class LLMService:
    def __init__(self, *, engine: LiteLLMEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> LiteLLMEngine:
        return self._engine

    async def stream_chat(
        self,
        *,
        account: Account,
        api_key: str | None,
        model: str,
        messages: Sequence[ChatMessage],
        params: ChatParams,
        timeout_s: float = 60.0,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield Started (then a Notice if stop sequences were cut), Text/Reasoning deltas (coalesced),
        UsageReport, then Finished or Failed."""
        refusal = params_refusal(params) or account_refusal(account, api_key)
        if refusal is not None:
            log.info("chat request not sent: %s", refusal.kind)
            yield Failed(refusal)
            return
        options = params.request_options()
        # Without a turn of the loop when it is loaded: requests started together go out together.
        litellm = self._engine.loaded_module() or await self._engine.litellm()
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox(loop)
        documents = account.provider_id in DOCUMENT_PROVIDERS
        one_text = account.provider_id in ONE_TEXT_PROVIDERS
        if any(m.files for m in messages):  # base64 of every attached file: off the event loop
            sent = await asyncio.to_thread(_with_system_prompt, messages, params.system_prompt, documents, one_text)
        else:
            sent = _with_system_prompt(messages, params.system_prompt, documents, one_text)
        if params.cache_prompt and takes_cache_control(account.provider_id):
            sent = with_cache_breakpoints(sent)
        request = _Request(
            account=account,
            api_key=api_key,
            model=model,
            timeout_s=timeout_s,
            messages=sent,
            options=options,
        )
        future = self._engine.submit(_produce(litellm, request, mailbox))
        try:
            while True:
                batch = await mailbox.take()
                started, cpu_started = time.perf_counter(), time.thread_time()
                for event in _coalesce(batch):
                    if event is _END:
                        return
                    yield event
                if any(isinstance(e, (TextDelta, ReasoningDelta, ToolCallDelta)) for e in batch):
                    await _pace(started, time.thread_time() - cpu_started)
        finally:
            if not future.done():
                future.cancel()
                # Wait (briefly) for the engine side to close the HTTP stream, so that when Stop
                # returns the server has been told.
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), 5.0)


async def _pace(batch_started: float, consumer_cpu_s: float) -> None:
    """Always yield to the consumer's loop; wait until the next batch is due."""
    wanted = consumer_cpu_s * CONSUMER_CPU_SHARE_INVERSE
    interval = min(MAX_BATCH_INTERVAL_S, max(MIN_BATCH_INTERVAL_S, wanted))
    await asyncio.sleep(max(0.0, batch_started + interval - time.perf_counter()))


@dataclass(slots=True)
class _Request:
    account: Account
    api_key: str | None
    model: str
    timeout_s: float
    messages: list[dict[str, Any]]
    options: dict[str, Any]


def _with_system_prompt(
    messages: Sequence[ChatMessage], system_prompt: str, documents: bool = True, one_text: bool = False
) -> list[dict[str, Any]]:
    out = [m.as_dict(documents=documents, one_text=one_text) for m in messages if m.role != "system"]
    if system_prompt.strip():
        out.insert(0, {"role": "system", "content": system_prompt})
    return out


def _coalesce(batch: list[Any]) -> list[Any]:
    """Merge runs of text (and of reasoning) deltas: one widget update per run, not per chunk."""
    out: list[Any] = []
    for item in batch:
        if out and type(item) is type(out[-1]) and isinstance(item, (TextDelta, ReasoningDelta)):
            out[-1] = type(item)(out[-1].text + item.text)
        elif out and isinstance(item, ToolCallDelta) and _continues(out[-1], item):
            last = out[-1]
            out[-1] = ToolCallDelta(last.index, last.id, last.name, last.arguments + item.arguments)
        else:
            out.append(item)
    return out


def _continues(previous: Any, delta: ToolCallDelta) -> bool:
    """`delta` only adds arguments to the same call as `previous`."""
    return isinstance(previous, ToolCallDelta) and previous.index == delta.index and not (delta.id or delta.name)


def _tool_call_deltas(delta: Any) -> list[ToolCallDelta]:
    """The tool-call pieces of a streamed chunk's delta (OpenAI's `delta.tool_calls`)."""
    out = []
    for position, piece in enumerate(getattr(delta, "tool_calls", None) or ()):
        function = getattr(piece, "function", None)
        index = getattr(piece, "index", None)
        out.append(
            ToolCallDelta(
                index=position if index is None else int(index),
                id=getattr(piece, "id", None) or "",
                name=getattr(function, "name", None) or "",
                arguments=getattr(function, "arguments", None) or "",
            )
        )
    return out


def _split_supported(litellm: Any, request: _Request) -> tuple[dict[str, Any], tuple[str, ...]]:
    prefix = request.account.provider.litellm_prefix
    try:
        supported = litellm.get_supported_openai_params(model=request.model, custom_llm_provider=prefix)
    except Exception:  # noqa: BLE001 (an unknown model: LiteLLM cannot tell, so send everything)
        supported = None
    if not supported:
        return dict(request.options), ()
    supported = taken_params(request.account.provider_id, supported)
    kept = {k: v for k, v in request.options.items() if k in supported}
    dropped = tuple(sorted(k for k in request.options if k not in supported))
    return kept, dropped


def _limit_stop_sequences(options: dict[str, Any]) -> tuple[dict[str, Any], Notice | None]:
    stops = options.get("stop")
    if not isinstance(stops, list) or len(stops) <= MAX_STOP_SEQUENCES:
        return options, None
    notice = Notice(
        f"Sent only the first {MAX_STOP_SEQUENCES} of the {len(stops):,} stop sequences: "
        f"no more than {MAX_STOP_SEQUENCES} can be sent."
    )
    return {**options, "stop": stops[:MAX_STOP_SEQUENCES]}, notice


def _without_thinking_clashes(request: _Request, options: dict[str, Any]) -> tuple[dict[str, Any], Notice | None]:
    """While Claude thinks (a budget, or an effort LiteLLM turns into one) its API refuses a temperature
    other than 1, any top_k and a top_p under 0.95 (Anthropic's documentation): those are left out, and said."""
    if request.account.provider_id != "anthropic" or not {"thinking", "reasoning_effort"} & options.keys():
        return options, None
    fits = {"temperature": lambda v: v == 1, "top_k": lambda _v: False, "top_p": lambda v: v >= 0.95}
    clashing = [name for name, ok in fits.items() if name in options and not ok(options[name])]
    if not clashing:
        return options, None
    notice = Notice(
        f"Left out {', '.join(clashing)}: {request.model} takes no top_k, no temperature but 1 and no top_p"
        " under 0.95 while it thinks."
    )
    return {k: v for k, v in options.items() if k not in clashing}, notice


def _with_implied_params(litellm: Any, request: _Request, options: dict[str, Any]) -> dict[str, Any]:
    """`options` plus what LiteLLM would fill in unasked (Anthropic's required max_tokens, also on
    Vertex AI), sent explicitly so that the stored request says everything that went out."""
    claude = request.account.provider_id in ("anthropic", "vertex")
    if not claude or "max_tokens" in options or "max_completion_tokens" in options:
        return options
    try:
        default = int(litellm.AnthropicConfig.get_max_tokens_for_model(request.model))
    except Exception:  # noqa: BLE001 (LiteLLM then picks its default itself, as before)
        return options
    return {**options, "max_tokens": default}


def _sent_request(request: _Request, options: dict[str, Any]) -> SentRequest:
    account = request.account
    base_url, url_password = without_url_password(account.effective_base_url)
    api_base = litellm_api_base(account)
    vertex, bedrock = account.provider_id == "vertex", account.provider_id == "bedrock"
    return SentRequest(
        account_id=account.id,
        provider_id=account.provider_id,
        base_url=base_url,
        api_base=None if api_base is None else without_url_password(api_base)[0],
        litellm_model=litellm_model_name(account, request.model),
        model=request.model,
        messages=tuple(dict(m) for m in request.messages),
        params=dict(options),
        headers=dict(account.extra_headers),
        secret_headers=tuple(n for n in account.secret_headers if n in account.request_headers),
        key_sent=bool(request.api_key),
        stream_options=dict(_STREAM_OPTIONS),
        url_password=url_password,
        # Where a cloud account's request went beyond its URL (never a secret).
        api_version=account.azure_api_version if account.provider_id == "azure" else None,
        project=_vertex_project(account, request.api_key) if vertex else None,
        location=account.vertex_location if vertex else None,
        region=account.aws_region if bedrock else None,
        aws_profile=account.aws_profile if bedrock else None,
    )


def _vertex_project(account: Account, api_key: str | None) -> str | None:
    """The account's project, else the service-account key's, which LiteLLM then uses."""
    return account.project or (service_account_project(api_key) if api_key else None)


def _cost(litellm: Any, request: _Request, tally: _Tally) -> tuple[float | None, float | None]:
    """What the reply cost, cached prompt tokens at LiteLLM's cache prices, and what the cache saved
    (the cost had every prompt token been plain input, minus the cost); (None, None) when unknown."""
    if request.account.provider.is_local or tally.prompt_tokens is None:
        return None, None

    def priced(read: int, written: int) -> float:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=request.model,
            custom_llm_provider=request.account.provider.litellm_prefix,
            prompt_tokens=tally.prompt_tokens or 0,
            completion_tokens=tally.completion_tokens or 0,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=written,
        )
        return float(prompt_cost) + float(completion_cost)

    read, written = tally.cache_read_tokens or 0, tally.cache_write_tokens or 0
    try:
        cost = priced(read, written)
        saved = priced(0, 0) - cost if read or written else None
    except Exception:  # noqa: BLE001 (LiteLLM does not know this model's price)
        return None, None
    return cost, saved


def _cache_tokens(usage: Any) -> tuple[int | None, int | None]:
    """(read, written) prompt tokens of the cache in LiteLLM's usage: Anthropic's cache_read/
    cache_creation_input_tokens, OpenAI's prompt_tokens_details.cached_tokens (reads only)."""
    details = getattr(usage, "prompt_tokens_details", None)
    read = getattr(usage, "cache_read_input_tokens", None) or getattr(details, "cached_tokens", None)
    written = getattr(usage, "cache_creation_input_tokens", None) or getattr(details, "cache_creation_tokens", None)
    return (read if isinstance(read, int) else None), (written if isinstance(written, int) else None)


def _estimate_usage(litellm: Any, request: _Request, tally: _Tally) -> None:
    """A server that ignored `include_usage`: LiteLLM's estimate, as it used to add it itself."""
    model = litellm_model_name(request.account, request.model)
    try:
        tally.prompt_tokens = estimate_tokens(litellm, model, messages=request.messages)
        tally.completion_tokens = estimate_tokens(litellm, model, text="".join(tally.text))
    except Exception:  # an estimate must never fail the reply
        log.info("no token estimate for %s", request.model, exc_info=True)
        tally.prompt_tokens = tally.completion_tokens = None


async def _produce(litellm: Any, request: _Request, mailbox: _Mailbox) -> None:
    """Engine-thread side: run the request, push events, always end with _END."""
    account = request.account
    options, dropped = _split_supported(litellm, request)
    options, stops_cut = _limit_stop_sequences(options)
    options, thinking_clash = _without_thinking_clashes(request, options)
    options = _with_implied_params(litellm, request, options)
    tally = _Tally()
    calls = ToolCallAssembler()
    stream = None
    try:
        mailbox.put(Started(model=request.model, dropped_params=dropped, request=_sent_request(request, options)))
        for notice in (stops_cut, thinking_clash):
            if notice is not None:
                mailbox.put(notice)
        list_local_model(litellm, account.provider.litellm_prefix, request.model)
        stream = await litellm.acompletion(
            model=litellm_model_name(account, request.model),
            messages=request.messages,
            api_base=litellm_api_base(account),
            **_credentials(account, request.api_key),
            **_local_pricing(account),
            stream=True,
            stream_options=dict(_STREAM_OPTIONS),
            timeout=request.timeout_s,
            max_retries=0,  # pools (and the user's Retry) decide about retries, not the SDK
            drop_params=True,
            extra_headers=account.request_headers or None,
            **account.litellm_params,
            **options,
        )
        headers = _response_headers(stream)
        if headers:
            mailbox.put(ResponseHeaders(headers))
        async for chunk in stream:
            choices = chunk.choices
            if choices:
                choice = choices[0]
                delta = choice.delta
                # What the server sent, minus the controls that would reorder it on screen.
                reasoning = without_bidi_controls(getattr(delta, "reasoning_content", None) or "")
                content = without_bidi_controls(delta.content or "")
                if reasoning:
                    if tally.first_token is None:
                        tally.first_token = time.perf_counter()
                    if tally.first_reasoning is None:
                        tally.first_reasoning = time.perf_counter()
                    tally.text.append(reasoning)
                    mailbox.put(ReasoningDelta(reasoning))
                if content:
                    if tally.first_token is None:
                        tally.first_token = time.perf_counter()
                    if tally.first_text is None:
                        tally.first_text = time.perf_counter()
                    tally.content_chunks += 1
                    tally.text.append(content)
                    mailbox.put(TextDelta(content))
                for piece in _tool_call_deltas(delta):
                    if tally.first_token is None:
                        tally.first_token = time.perf_counter()
                    tally.text.append(piece.name + piece.arguments)
                    calls.add(piece)
                    mailbox.put(piece)
                if choice.finish_reason:
                    tally.finish_reason = choice.finish_reason
            usage = getattr(chunk, "usage", None)
            if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
                tally.prompt_tokens = usage.prompt_tokens
                tally.completion_tokens = usage.completion_tokens
                details = getattr(usage, "completion_tokens_details", None)
                tally.reasoning_tokens = getattr(details, "reasoning_tokens", None) or tally.reasoning_tokens
                read, written = _cache_tokens(usage)
                tally.cache_read_tokens = read if read is not None else tally.cache_read_tokens
                tally.cache_write_tokens = written if written is not None else tally.cache_write_tokens
        if tally.prompt_tokens is None and tally.completion_tokens is None:
            _estimate_usage(litellm, request, tally)
        if tally.prompt_tokens is not None or tally.completion_tokens is not None:
            mailbox.put(
                UsageReport(
                    tally.prompt_tokens, tally.completion_tokens, tally.cache_read_tokens, tally.cache_write_tokens
                )
            )
        if calls:
            mailbox.put(ToolCalls(calls.calls()))
        mailbox.put(Finished(tally.finish_reason, tally.metrics(*_cost(litellm, request, tally))))
    except asyncio.CancelledError:
        raise
    except DomainError as exc:
        mailbox.put(Failed(exc, tally.metrics(None)))
    except Exception as exc:  # noqa: BLE001 (map_error turns any failure into a domain error)
        headers = _response_headers(exc)
        if headers:
            mailbox.put(ResponseHeaders(headers))
        try:
            error = map_error(
                exc, account_label=account.label, model=request.model, base_url=account.effective_base_url
            )
        except Exception:  # a failure must never end silently, even if describing it fails
            log.exception("describing a failed chat request failed")
            error = ServerError(
                "The request failed in a way ModelDesk could not describe.", "Copy the diagnostics and report it."
            )
        log.info("chat request failed: %s (%s)", error.kind, type(exc).__name__)
        mailbox.put(Failed(error, tally.metrics(None)))
    finally:
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()
        mailbox.put(_END)
        release_duplicate_tables()  # a first request loads a tokenizer to price itself
