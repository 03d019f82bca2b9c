"""The text of `/api/chat` and prompted `/api/generate` for the loopback Ollama server.

Without an upstream the reply is five canned words (the pane and service tests rely on them). With
one, the base URL of a real llama-server, each request is forwarded as a streaming
`POST {upstream}/v1/chat/completions` and llama-server's SSE chunks come back as the pieces Ollama
turns into its ndjson lines (ollama/ollama server/routes.go ChatHandler and GenerateHandler,
llm/server.go Completion, api/types.go ChatResponse, GenerateResponse and Metrics):

* Request: the chat's `messages` (role and content; the model's SYSTEM first when the chat does
  not start with a system message), or `system` (else the model's SYSTEM) and `prompt` for
  generate. Options are type-checked like `api.Options.FromMap` and mapped to llama-server's
  sampling fields (temperature, top_p, top_k, min_p, typical_p, seed, repeat_penalty,
  repeat_last_n, presence_penalty, frequency_penalty, stop; num_predict > 0 -> max_tokens); the
  ones fixed when a runner loads (num_ctx, num_gpu...) and unknown ones are ignored, as Ollama
  does. `format` "json" -> response_format json_object, a schema object -> json_schema.
* Pieces: `Delta` per text chunk, then one `Finished` with done_reason ("stop" or "length") and
  the Metrics in nanoseconds: prompt_eval_count and eval_count from the usage, their durations
  from llama-server's timings (else measured here), total and load durations measured from the
  moment the request arrived. Zero values are left out, like Go's omitempty.
* Errors (`ReplyError`): llama-server unreachable -> 500 "model runner has unexpectedly stopped,
  ..."; an HTTP error from it -> its status and message; the stream breaking or ending without a
  finish reason -> "an error was encountered while running the model: ...". The server sends
  the status when nothing was written yet, else an {"error": ...} line.

Images (docs.ollama.com/api/chat, ollama/ollama docs/api.md "Chat request (with images)",
api/types.go Message.Images []ImageData): `messages[].images` is a list of base64 strings, without
a `data:` prefix, which Go's encoding/json decodes into bytes when the request is read; anything
else is the 400 that binding gives ("illegal base64 data at input byte N"). `check_images`
checks every message, also when no upstream is set. Images for a model whose capabilities lack
"vision" are the runner's 500 "this model is missing data required for image input"
(model/model.go ErrNoVisionModel), once the model is loaded (`check_sees`).

The upstream request lives inside the generator, so closing it (the server does when its client
leaves) closes the connection and llama-server stops generating. httpx is imported only when a
request is forwarded: the canned server keeps to the standard library and starts fast.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import string
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)
RUNNER_FAILED = "an error was encountered while running the model: "
NO_VISION = "this model is missing data required for image input"
UPSTREAM_READ_TIMEOUT_S = 300.0  # a long prompt on a slow CPU; the test's own timeouts are shorter

CANNED_WORDS = ("Hello", " from", " the", " test", " server.")
CANNED_METRICS = {
    "total_duration": 5_000_000,
    "load_duration": 1_000_000,
    "prompt_eval_count": 5,
    "prompt_eval_duration": 1_000_000,
    "eval_count": len(CANNED_WORDS),
    "eval_duration": 3_000_000,
}

# api.Options fields, by the JSON type FromMap demands, and llama-server's name for each.
INT_OPTIONS = {"seed": "seed", "top_k": "top_k", "repeat_last_n": "repeat_last_n", "num_predict": "max_tokens"}
FLOAT_OPTIONS = {
    name: name
    for name in (
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    )
}


@dataclass(frozen=True)
class Delta:
    content: str
    thinking: str = ""


@dataclass(frozen=True)
class Finished:
    """The end of a reply: Ollama's done_reason and its Metrics fields (ns, zeros left out)."""

    reason: str
    metrics: dict[str, int]


class ReplyError(Exception):
    """The reply failed: `status` if no line was written yet, else an {"error": ...} line."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def reply_line(
    kind: str, model: str, created_at: str, delta: Delta, finished: Finished | None = None
) -> dict[str, Any]:
    """One ChatResponse ("chat") or GenerateResponse ("generate"), fields in Go's order."""
    line: dict[str, Any] = {"model": model, "created_at": created_at}
    if kind == "chat":
        message = {"role": "assistant", "content": delta.content}
        if delta.thinking:
            message["thinking"] = delta.thinking
        line["message"] = message
        if finished is not None:
            line["done_reason"] = finished.reason
        line["done"] = finished is not None
    else:
        line["response"] = delta.content
        if delta.thinking:
            line["thinking"] = delta.thinking
        line["done"] = finished is not None
        if finished is not None:
            line["done_reason"] = finished.reason
    if finished is not None:
        line.update(finished.metrics)
    return line


# With `think` on, a thinking model streams `message.thinking` before the answer's `content`
# (github.com/ollama/ollama/blob/main/docs/api.md, "Chat request (With thinking)"; docs.ollama.com/capabilities/thinking).
THINKING_PIECES = ("Okay, ", "a greeting: ", "answer in kind.")


async def canned_reply(think: bool = False) -> AsyncIterator[Delta | Finished]:
    for thought in THINKING_PIECES if think else ():
        yield Delta("", thought)
        await asyncio.sleep(0.005)
    for word in CANNED_WORDS:
        yield Delta(word)
        await asyncio.sleep(0.005)
    yield Finished("stop", dict(CANNED_METRICS))


# -- request ------------------------------------------------------------------------------
def chat_messages(messages: list[Any], system: str) -> list[dict[str, str]]:
    """The chat as OpenAI messages, with the model's SYSTEM first unless the chat has its own."""
    out: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ReplyError(
                f"json: cannot unmarshal {type(message).__name__} into Go struct field "
                "ChatRequest.messages of type api.Message",
                400,
            )
        role, content = message.get("role") or "", message.get("content") or ""
        if not isinstance(role, str) or not isinstance(content, str):
            raise ReplyError("json: cannot unmarshal into Go struct field Message.messages.content of type string", 400)
        out.append({"role": role, "content": content})
    if system and (not out or out[0]["role"] != "system"):
        out.insert(0, {"role": "system", "content": system})
    return out


_BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/=")


def check_images(messages: list[Any]) -> None:
    """Each message's `images` as Go decodes them (a list of standard base64 strings); ReplyError 400
    worded as Ollama answers a body that does not bind."""
    import base64

    for message in messages:
        if not isinstance(message, dict) or message.get("images") is None:
            continue
        images = message["images"]
        if not isinstance(images, list):
            kind = _go_kind(images)
            raise ReplyError(
                f"json: cannot unmarshal {kind} into Go struct field Message.messages.images of type []api.ImageData",
                400,
            )
        for image in images:
            if not isinstance(image, str):
                kind = _go_kind(image)
                raise ReplyError(
                    f"json: cannot unmarshal {kind} into Go struct field Message.messages.images of type api.ImageData",
                    400,
                )
            bad = next((i for i, char in enumerate(image) if char not in _BASE64_ALPHABET), None)
            if bad is None:
                try:
                    base64.b64decode(image, validate=True)
                except (binascii.Error, ValueError):
                    bad = len(image) - len(image) % 4  # the quantum that is cut short or padded wrong
            if bad is not None:
                raise ReplyError(f"illegal base64 data at input byte {bad}", 400)


def check_sees(messages: list[Any], capabilities: Iterable[str]) -> None:
    """Images for a model that has no vision: ReplyError 500, as Ollama's runner fails the request."""
    if "vision" not in capabilities and any(isinstance(m, dict) and m.get("images") for m in messages):
        raise ReplyError(NO_VISION, 500)


def _go_kind(value: Any) -> str:
    for kind, name in ((bool, "bool"), ((int, float), "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def generate_messages(prompt: str, system: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def upstream_request(model: str, messages: list[dict[str, str]], options: Any, output_format: Any) -> dict[str, Any]:
    """The streaming OpenAI request for an Ollama one; ReplyError worded as Ollama words it."""
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for key, value in (options or {}).items():
        if value is None:
            continue
        if key in INT_OPTIONS or key in FLOAT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                kind = "integer" if key in INT_OPTIONS else "float32"
                raise ReplyError(f'option "{key}" must be of type {kind}')
            if key in INT_OPTIONS:
                value = int(value)  # Go truncates a JSON number into an int field
                if key == "num_predict" and value <= 0:
                    continue  # -1: no limit, -2: fill the context; llama-server's default does both
            request[INT_OPTIONS.get(key) or FLOAT_OPTIONS[key]] = value
        elif key == "stop":
            if not isinstance(value, list):
                raise ReplyError('option "stop" must be of type array')
            if not all(isinstance(item, str) for item in value):
                raise ReplyError('option "stop" must be of an array of strings')
            request["stop"] = value
    if output_format in (None, ""):
        pass
    elif output_format == "json":
        request["response_format"] = {"type": "json_object"}
    elif isinstance(output_format, dict):
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "format", "schema": output_format}}
    else:
        raw = json.dumps(output_format, ensure_ascii=False)
        raise ReplyError(
            f'invalid format: {json.dumps(raw, ensure_ascii=False)}; expected "json" or a valid JSON Schema object'
        )
    return request


# -- reply ----------------------------------------------------------------------------------
def _error_text(body: bytes | str) -> str:
    """llama-server's {"error": {"message": ...}} (or any body) as one line of text."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        return text.strip()
    if isinstance(error, dict):
        return str(error.get("message") or text.strip())
    return str(error or text.strip())


@dataclass
class _Clock:
    """Monotonic nanoseconds of the moments the Metrics are made of."""

    arrived: int  # the request reached the Ollama server
    sent: int = 0  # the upstream request was sent (Ollama's checkpointLoaded)
    first_token: int = 0
    done: int = 0

    @staticmethod
    def now() -> int:
        return time.monotonic_ns()


def _metrics(clock: _Clock, usage: dict[str, Any], timings: dict[str, Any], deltas: int) -> dict[str, int]:
    first = clock.first_token or clock.done

    def ms(key: str) -> int:
        value = timings.get(key)
        return round(value * 1e6) if isinstance(value, (int, float)) else 0

    metrics = {
        "total_duration": clock.done - clock.arrived,
        "load_duration": clock.sent - clock.arrived,
        "prompt_eval_count": int(usage.get("prompt_tokens") or timings.get("prompt_n") or 0),
        "prompt_eval_duration": ms("prompt_ms") or first - clock.sent,
        "eval_count": int(usage.get("completion_tokens") or timings.get("predicted_n") or deltas),
        "eval_duration": ms("predicted_ms") or clock.done - first,
    }
    return {name: value for name, value in metrics.items() if value > 0}


async def _translate(lines: AsyncIterator[str], clock: _Clock) -> AsyncIterator[Delta | Finished]:
    """llama-server's SSE lines -> Deltas, then one Finished; ReplyError for an error event."""
    usage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    finish: str | None = None
    deltas = 0
    async for line in lines:
        field, _, data = line.partition(":")
        data = data.strip()
        if field == "error":
            raise ReplyError(RUNNER_FAILED + _error_text(data))
        if field != "data" or not data:
            continue  # blank separators and ": comment" keep-alives
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ReplyError(f"error unmarshalling llm prediction response: {data[:200]}") from None
        if not isinstance(chunk, dict) or "error" in chunk:
            raise ReplyError(RUNNER_FAILED + _error_text(data))
        usage = chunk.get("usage") or usage
        timings = chunk.get("timings") or timings
        for choice in _choices(chunk):
            delta = choice.get("delta") or {}
            content, thinking = delta.get("content") or "", delta.get("reasoning_content") or ""
            if content or thinking:
                clock.first_token = clock.first_token or _Clock.now()
                deltas += 1
                yield Delta(content, thinking)
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise ReplyError(RUNNER_FAILED + "unexpected EOF")
    clock.done = _Clock.now()
    # Ollama knows "stop" and "length"; tool_calls and content_filter end a reply as "stop".
    reason = "length" if finish == "length" else "stop"
    yield Finished(reason, _metrics(clock, usage, timings, deltas))


def _choices(chunk: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return [choice for choice in chunk.get("choices") or () if isinstance(choice, dict)]


async def forwarded_reply(upstream: str, request: dict[str, Any], arrived_ns: int) -> AsyncIterator[Delta | Finished]:
    """Stream `request` to llama-server at `upstream`; the pieces of Ollama's reply."""
    import httpx  # only when forwarding: see the module docstring

    clock = _Clock(arrived=arrived_ns)
    timeout = httpx.Timeout(UPSTREAM_READ_TIMEOUT_S, connect=5.0)
    # trust_env=False: a proxy from the environment must never see loopback test traffic.
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        clock.sent = _Clock.now()
        try:
            async with client.stream("POST", f"{upstream.rstrip('/')}/v1/chat/completions", json=request) as response:
                if response.status_code >= 400:
                    raise ReplyError(_error_text(await response.aread()), response.status_code)
                async for piece in _translate(response.aiter_lines(), clock):
                    yield piece
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise ReplyError(RUNNER_STOPPED) from None
        except httpx.TransportError as exc:
            raise ReplyError(RUNNER_FAILED + (str(exc) or type(exc).__name__)) from None
