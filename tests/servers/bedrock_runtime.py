"""A strict loopback twin of Amazon Bedrock: Converse, ConverseStream and ListFoundationModels.

Follows the Bedrock API reference (docs.aws.amazon.com/bedrock/latest/APIReference):
- ``POST /model/{modelId}/converse`` (API_runtime_Converse) and ``POST /model/{modelId}/converse-stream``
  (API_runtime_ConverseStream): the body's top-level fields are checked against the documented ones
  (anything else is ``400 ValidationException``); the stream is ``application/vnd.amazon.eventstream``,
  each event one binary message of the AWS event-stream encoding (docs.aws.amazon.com/AmazonS3/latest/
  API/RESTSelectObjectAppendix.html, "Event stream encoding"): prelude (total length, headers length,
  CRC32), headers (``:event-type``, ``:content-type``, ``:message-type``, string-typed), the JSON
  payload and the message CRC32; events messageStart, contentBlockDelta, contentBlockStop, messageStop
  and metadata (usage, metrics).
- ``GET /foundation-models`` (API_ListFoundationModels, the control plane; served here too, so one
  base URL stands for both endpoints): ``{"modelSummaries": [...]}``.
Every request must carry a Signature Version 4 ``Authorization`` header (docs.aws.amazon.com/IAM/
latest/UserGuide/reference_sigv-create-signed-request.html): ``AWS4-HMAC-SHA256 Credential=<key id>/
<yyyymmdd>/<region>/bedrock/aws4_request, SignedHeaders=...;host;...;x-amz-date..., Signature=<64 hex>``,
with an ``X-Amz-Date`` of the same day; the signature itself is not recomputed. Errors are JSON
``{"message"}`` with ``x-amzn-ErrorType``: a missing or malformed signature is 403
``MissingAuthenticationTokenException`` / ``IncompleteSignatureException``, an unknown key id 403
``UnrecognizedClientException``, a throttled account 429 ``ThrottlingException``.

``behaviour[access_key_id]`` is "ok" (default) or "429"; ``requests`` keeps each parsed request.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import zlib
from typing import Any

from tests.servers._fault import FaultServerBase, head, json_answer
from tests.servers._http import Exchange, Request, end_chunked, frame, send

REGION = "us-east-1"
MODELS = (
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5"),
)
PIECES = tuple(f"b{i} " for i in range(12))
CONVERSE_FIELDS = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
    }
)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([A-Z0-9]{16,128})/(\d{8})/([a-z0-9-]+)/bedrock/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})"
)
_PATH = re.compile(r"/model/([^/]+)/(converse|converse-stream)")


class AwsError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One binary event-stream message: prelude, prelude CRC, headers, payload, message CRC."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + len(raw).to_bytes(2, "big") + raw
    body = json.dumps(payload, separators=(",", ":")).encode()
    total = 4 + 4 + 4 + len(headers) + len(body) + 4
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + headers + body
    return message + zlib.crc32(message).to_bytes(4, "big")


class BedrockServer(FaultServerBase):
    """``valid_keys`` are access key ids; see the module docstring."""

    thread_name = "bedrock-twin"
    start_error = "Bedrock twin failed to start"
    default_keys = ("AKIATWINEXAMPLE00001",)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, valid_keys: set[str] | None = None) -> None:
        super().__init__(host, port, valid_keys)
        self.behaviour: dict[str, str] = {}
        self.seen: list[tuple[str, str, str]] = []  # (path, access key id, region) of every signed request

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        rid = str(uuid.uuid4())
        try:
            key_id = self._authorise(req)
            path = req.path.partition("?")[0]
            if req.method == "GET" and path == "/foundation-models":
                return await send(writer, json_answer(200, _model_summaries(), [("x-amzn-requestid", rid)]))
            found = _PATH.fullmatch(path)
            if req.method != "POST" or found is None:
                raise AwsError(404, "UnknownOperationException", "")
            model_id = found.group(1).replace("%3A", ":")
            if model_id not in {m[0] for m in MODELS}:
                raise AwsError(400, "ValidationException", "The provided model identifier is invalid.")
            body = _validated(req.raw_body)
            if self.behaviour.get(key_id) == "429":
                raise AwsError(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        except AwsError as exc:
            headers = [("x-amzn-requestid", rid), ("x-amzn-errortype", f"{exc.kind}:http://internal.amazon.com/coral/")]
            return await send(writer, json_answer(exc.status, {"message": exc.message}, headers))
        input_tokens = sum(len(str(b.get("text", "")).split()) for m in body["messages"] for b in m["content"]) + 3
        usage = {"inputTokens": input_tokens, "outputTokens": len(PIECES), "totalTokens": input_tokens + len(PIECES)}
        if found.group(2) == "converse":
            answer = {
                "output": {"message": {"role": "assistant", "content": [{"text": "".join(PIECES)}]}},
                "stopReason": "end_turn",
                "usage": usage,
                "metrics": {"latencyMs": 40},
            }
            return await send(writer, json_answer(200, answer, [("x-amzn-requestid", rid)]))
        state.in_flight = True
        stream_head = head(
            200,
            [
                ("content-type", "application/vnd.amazon.eventstream"),
                ("transfer-encoding", "chunked"),
                ("x-amzn-requestid", rid),
                ("connection", "keep-alive"),
            ],
        )
        writer.write(stream_head + frame(event_message("messageStart", {"role": "assistant"})))
        for piece in PIECES:
            writer.write(frame(event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})))
            await writer.drain()
        tail = (
            frame(event_message("contentBlockStop", {"contentBlockIndex": 0}))
            + frame(event_message("messageStop", {"stopReason": "end_turn"}))
            + frame(event_message("metadata", {"usage": usage, "metrics": {"latencyMs": 40}}))
        )
        return await end_chunked(writer, state, tail)

    def _authorise(self, req: Request) -> str:
        auth = req.headers.get("authorization", "")
        if not auth:
            raise AwsError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        signed = _AUTH.fullmatch(auth)
        amz_date = req.headers.get("x-amz-date", "")
        if (
            signed is None
            or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date)
            or amz_date[:8] != signed.group(2)
            or not {"host", "x-amz-date"} <= set(signed.group(4).split(";"))
        ):
            raise AwsError(
                403,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
            )
        key_id, region = signed.group(1), signed.group(3)
        with self._lock:
            self.seen.append((req.path, key_id, region))
            known = key_id in self.valid_keys
        if not known:
            raise AwsError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if region != REGION:
            raise AwsError(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{region}'. ",
            )
        return key_id


def _validated(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise AwsError(
            400, "ValidationException", "Malformed input request, please reformat your input and try again."
        ) from None
    if not isinstance(body, dict):
        raise AwsError(400, "ValidationException", "Malformed input request, please reformat your input and try again.")
    if unknown := sorted(set(body) - CONVERSE_FIELDS):
        raise AwsError(400, "ValidationException", f'Unknown parameter in input: "{unknown[0]}"')
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AwsError(400, "ValidationException", "A conversation must start with a user message.")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise AwsError(400, "ValidationException", "Each message needs a role of user or assistant.")
        if not isinstance(message.get("content"), list) or not all(isinstance(b, dict) for b in message["content"]):
            raise AwsError(400, "ValidationException", "Each message's content must be a list of content blocks.")
    return body


def _model_summaries() -> dict[str, Any]:
    return {
        "modelSummaries": [
            {
                "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
                "modelId": model_id,
                "modelName": name,
                "providerName": "Anthropic",
                "inputModalities": ["TEXT", "IMAGE"],
                "outputModalities": ["TEXT"],
                "responseStreamingSupported": True,
                "inferenceTypesSupported": ["ON_DEMAND"],
                "modelLifecycle": {"status": "ACTIVE"},
            }
            for model_id, name in MODELS
        ]
    }
