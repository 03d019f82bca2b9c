"""Telemetry export without Qt: the spans as the loopback OTLP receiver decodes them (with
opentelemetry-proto's classes, so the hand-written encoding is checked against the real schema),
the batching exporter against the receiver up and down, the Test button's sentence, and the settings
round trip with credential headers in the keyring."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from desktop_app import __version__
from desktop_app.domain.chat import ChatMessage, ChatParams, ReplyMetrics
from desktop_app.domain.telemetry import Attempt, TelemetrySettings, span_of, traces_url
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore
from desktop_app.services.telemetry import SpanExporter, Telemetry, partial_success, send_test_span
from tests.servers.otlp_receiver import OtlpReceiver, attributes

PROMPT = "What is the capital of Atlantis-7731?"
REPLY = "Poseidonia-4410, of course."
KEY = "sk-telemetry-secret-0001"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def down_url() -> str:
    """A loopback address where nothing listens (a receiver started and stopped)."""
    with OtlpReceiver() as gone:
        url = gone.base_url
    return url


def attempt(**changes) -> Attempt:
    fields = {
        "provider_id": "openai",
        "account_id": "acc-1",
        "account_label": "Work OpenAI",
        "base_url": "http://127.0.0.1:8123/v1",
        "model": "gpt-4o-mini",
        "params": ChatParams(temperature=0.3, top_p=0.9, max_tokens=256, system_prompt="Be terse."),
        "status": "ok",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_001_500_000_000,
        "metrics": ReplyMetrics(ttft_s=0.25, prompt_tokens=12, completion_tokens=7),
        "finish_reason": "stop",
        "messages": (ChatMessage("user", PROMPT),),
        "reply": REPLY,
    }
    return Attempt(**{**fields, **changes})


def export(receiver: OtlpReceiver, *attempts: Attempt, include_content: bool = False) -> None:
    exporter = SpanExporter(traces_url(receiver.base_url), {}, interval_s=3600)
    for a in attempts:
        exporter.add(span_of(a, include_content=include_content, trace_id=os.urandom(16), span_id=os.urandom(8)))
    assert exporter.close(10.0)
    assert exporter.exported == len(attempts)


def test_a_span_follows_the_genai_conventions(receiver: OtlpReceiver) -> None:
    export(
        receiver,
        attempt(),
        attempt(status="failed", error_kind="rate_limited", finish_reason="", metrics=ReplyMetrics()),
    )

    ok, failed = receiver.spans
    assert ok.name == "chat gpt-4o-mini"
    assert ok.kind == ok.SPAN_KIND_CLIENT
    assert (ok.start_time_unix_nano, ok.end_time_unix_nano) == (1_700_000_000_000_000_000, 1_700_000_001_500_000_000)
    assert attributes(ok) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
        "server.address": "127.0.0.1",
        "server.port": 8123,
        "modeldesk.account.id": "acc-1",
        "modeldesk.account.label": "Work OpenAI",
        "modeldesk.attempt.status": "ok",
    }
    (ttft,) = ok.events
    assert ttft.name == "gen_ai.first_token"
    assert ttft.time_unix_nano == 1_700_000_000_250_000_000
    assert attributes(ttft) == {"gen_ai.response.time_to_first_token": 0.25}
    assert ok.status.code == ok.status.STATUS_CODE_UNSET
    assert attributes(failed)["error.type"] == "rate_limited"
    assert failed.status.code == failed.status.STATUS_CODE_ERROR
    assert receiver.resources == [{"service.name": "modeldesk", "service.version": __version__}]
    body = b"".join(receiver.bodies)
    assert PROMPT.encode() not in body and REPLY.encode() not in body and b"Be terse." not in body


def test_with_content_the_prompt_and_reply_go_in_as_the_conventions_say(receiver: OtlpReceiver) -> None:
    export(receiver, attempt(), include_content=True)

    attrs = attributes(receiver.spans[0])
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}
    ]
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be terse."}]


def test_the_exporter_batches_to_the_receiver(receiver: OtlpReceiver) -> None:
    exporter = SpanExporter(traces_url(receiver.base_url), {"X-Scope-OrgID": "team-a"}, interval_s=3600)
    for n in range(3):
        exporter.add(
            span_of(attempt(model=f"m{n}"), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8))
        )
    assert exporter.flush(10.0)  # the interval is an hour: only the flush sends them

    assert [s.name for s in receiver.spans] == ["chat m0", "chat m1", "chat m2"]
    assert len(receiver.requests) == 1  # one batch
    assert receiver.requests[0].headers["x-scope-orgid"] == "team-a"
    assert receiver.requests[0].headers["content-type"] == "application/x-protobuf"
    assert (exporter.exported, exporter.dropped) == (3, 0)
    assert exporter.close(5.0)


def test_an_endpoint_that_is_down_drops_and_counts_the_spans() -> None:
    exporter = SpanExporter(traces_url(down_url()), {}, interval_s=0)
    for _ in range(2):
        exporter.add(span_of(attempt(), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8)))
    assert exporter.flush(10.0)
    assert (exporter.exported, exporter.dropped) == (0, 2)
    assert exporter.last_failure == "it could not be reached"
    exporter.close(5.0)


def test_a_full_queue_drops_instead_of_waiting() -> None:
    """While the endpoint holds a batch, spans beyond the queue's bound are dropped at once."""
    holding, release = threading.Event(), threading.Event()

    def stuck_endpoint(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, bytes]:
        holding.set()
        release.wait(10)
        return 200, b""

    exporter = SpanExporter("http://127.0.0.1:9/v1/traces", {}, interval_s=0, max_queue=2, post=stuck_endpoint)
    span = span_of(attempt(), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8))
    exporter.add(span)
    assert holding.wait(10)  # the first span is being sent
    for _ in range(5):
        exporter.add(span)  # two queue, three are dropped, none waits
    assert exporter.dropped == 3
    release.set()
    assert exporter.close(10.0)
    assert (exporter.exported, exporter.dropped) == (3, 3)


def test_spans_a_collector_rejects_in_a_partial_success_are_counted_dropped_and_logged(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.partial = (2, "span name too long;\nsee the limits")
    # A batch goes when three spans wait or at a flush: the batches are 1, 3 and 1 spans.
    exporter = SpanExporter(traces_url(receiver.base_url), {}, interval_s=60, max_batch=3)
    with caplog.at_level(logging.WARNING, logger="desktop_app.services.telemetry"):
        exporter.add(span_of(attempt(), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8)))
        assert exporter.flush(10.0)
        assert (exporter.exported, exporter.dropped) == (0, 1)  # never more than were sent
        for _ in range(3):
            exporter.add(span_of(attempt(), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8)))
        assert exporter.flush(10.0)
    assert (exporter.exported, exporter.dropped) == (1, 3)
    assert exporter.last_failure == "it rejected 2 of 3 spans (span name too long; see the limits)"
    assert [r.getMessage() for r in caplog.records] == [
        f"telemetry export to {exporter.url}: it rejected 1 of 1 spans (span name too long; see the limits)",
        f"telemetry export to {exporter.url}: it rejected 2 of 3 spans (span name too long; see the limits)",
    ]
    receiver.partial = None
    exporter.add(span_of(attempt(), include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8)))
    assert exporter.flush(10.0) and exporter.last_failure == "" and exporter.exported == 2
    assert exporter.close(5.0)

    receiver.partial = (1, "")
    assert send_test_span(traces_url(receiver.base_url), {}) == (
        "The endpoint answered HTTP 200 but rejected the test span: it gave no reason."
    )


def test_partial_success_reads_what_the_real_schema_writes() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTracePartialSuccess,
        ExportTraceServiceResponse,
    )

    assert partial_success(b"") == (0, "")
    written = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=2**40, error_message="quota: ünïcode")
    ).SerializeToString()
    assert partial_success(written) == (2**40, "quota: ünïcode")
    with pytest.raises(ValueError, match="runs past the end"):
        partial_success(b"\x0a\x05ab")  # a field longer than the body
    with pytest.raises(ValueError, match="wire type 3"):
        partial_success(b"\x0b")  # wire type 3 (a group): not OTLP


def test_the_test_sentence(receiver: OtlpReceiver) -> None:
    url = traces_url(receiver.base_url)
    assert send_test_span(url, {}) == "The endpoint took the test span (HTTP 200)."
    assert len(receiver.spans) == 1
    receiver.required_headers = {"authorization": "Bearer right"}
    assert send_test_span(url, {"Authorization": "Bearer wrong"}) == (
        "The endpoint refused the test span with HTTP 401; check the headers."
    )
    assert send_test_span(receiver.base_url + "/v1/logs", {}) == (
        "The endpoint refused the test span with HTTP 404; check the URL."
    )
    down = traces_url(down_url())
    assert send_test_span(down, {}) == f"The test span was not sent: it could not be reached at {down}."


def test_traces_url() -> None:
    assert traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert traces_url("https://otel.example.com/v1/traces/") == "https://otel.example.com/v1/traces"


def test_the_endpoint_and_headers_are_checked_where_typed() -> None:
    with pytest.raises(ValueError, match="the endpoint URL must start with http:// or https://"):
        TelemetrySettings(endpoint="ftp://collector")
    with pytest.raises(ValueError, match="must not hold a user name or password"):
        TelemetrySettings(endpoint="http://user:pw@collector:4318")
    with pytest.raises(ValueError, match="holds a credential"):
        TelemetrySettings(headers={"Authorization": "Bearer x"})
    with pytest.raises(ValueError, match="set by the HTTP client"):
        TelemetrySettings(headers={"Content-Length": "3"})
    assert TelemetrySettings().enabled is False  # off by default


@pytest.mark.asyncio
async def test_settings_round_trip_with_credential_headers_in_the_keyring(tmp_path: Path, receiver) -> None:
    file = tmp_path / "settings.json"
    service = SettingsService(store=SettingsStore(file))
    secrets = SecretStore()
    await secrets.start()
    telemetry = Telemetry(settings=service, secrets=secrets, interval_s=0)
    saved = TelemetrySettings(
        enabled=True,
        endpoint=receiver.base_url,
        headers={"X-Scope-OrgID": "team-a"},
        secret_headers=("Authorization",),
        include_content=True,
    )
    await telemetry.save(saved, {"Authorization": f"Bearer {KEY}"})

    assert KEY not in file.read_text()
    loaded, notice = SettingsStore(file).load()
    assert notice is None and loaded.telemetry == saved
    assert telemetry.active and telemetry.include_content
    assert await telemetry.headers(saved) == {"X-Scope-OrgID": "team-a", "Authorization": f"Bearer {KEY}"}
    telemetry.record(attempt())
    assert await telemetry.flush()
    assert receiver.requests[0].headers["authorization"] == f"Bearer {KEY}"
    await telemetry.save(saved.model_copy(update={"enabled": False}), {})
    assert not telemetry.active
    await telemetry.aclose()


def test_unreadable_telemetry_settings_leave_export_off_and_the_rest_loaded(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"theme": "dark", "telemetry": {"enabled": True, "endpoint": "nowhere://x"}}))
    settings, notice = SettingsStore(file).load()
    assert settings.theme == "dark"
    assert settings.telemetry == TelemetrySettings()
    assert notice == (
        "The telemetry export settings were not loaded (endpoint: the endpoint URL must start with "
        "http:// or https://); export is off until you set it again in Settings > Telemetry export."
    )
