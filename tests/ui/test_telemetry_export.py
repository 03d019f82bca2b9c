"""Telemetry export in the real app: a chat against the loopback OpenAI server (rate-limited twice,
then answering) sends one span per attempt to the loopback OTLP receiver; content only when ticked;
the key never; a collector that is down leaves the chat alone and counts the drops; the dialog's
Test button says what became of its span and Save keeps the settings (credential headers in the keyring)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from desktop_app.domain.accounts import Account
from desktop_app.domain.telemetry import TelemetrySettings
from desktop_app.services.settings_store import SettingsStore
from desktop_app.services.telemetry import Telemetry
from tests.servers.otlp_receiver import OtlpReceiver, attributes
from tests.ui.conftest import WAIT_MS, run

KEY = "sk-otel-never-sent-4242"
PROMPT = "Tell me about the lighthouse of Qwertyville"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def chat(qtbot, modeldesk, fault_server, model: str) -> tuple[Account, str]:
    """Send PROMPT to `model` through the chat pane; the account and the reply's text."""
    fault_server.retry_after = "0"
    fault_server.valid_keys.add(KEY)
    account = Account(provider_id="openai", label="Traced OpenAI", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, KEY))
    run(qtbot, modeldesk.accounts.refresh_models(account.id))
    pane = modeldesk.chat_pane
    assert pane.select_model(account.id, model)
    pane.composer.setPlainText(PROMPT)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["complete"]
    reply = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))[-1].content
    return account, reply


def turn_on(qtbot, telemetry: Telemetry, endpoint: str, *, include_content: bool = False) -> None:
    telemetry.interval_s = 0  # each span goes out as it comes
    run(qtbot, telemetry.save(TelemetrySettings(enabled=True, endpoint=endpoint, include_content=include_content), {}))


def test_one_span_per_attempt_without_content(qtbot, modeldesk, fault_server, receiver):
    turn_on(qtbot, modeldesk.telemetry, receiver.base_url)
    account, reply = chat(qtbot, modeldesk, fault_server, "flaky-2-429")
    assert receiver.wait_for_spans(3)

    failed1, failed2, ok = receiver.spans
    assert failed1.trace_id == failed2.trace_id == ok.trace_id  # one reply, one trace
    assert len({failed1.span_id, failed2.span_id, ok.span_id}) == 3
    for span in (failed1, failed2):
        attrs = attributes(span)
        assert attrs["error.type"] == "RateLimited"
        assert span.status.code == span.status.STATUS_CODE_ERROR
        assert "gen_ai.response.model" not in attrs
    attrs = attributes(ok)
    host, port = fault_server.base_url.removeprefix("http://").removesuffix("/v1").split(":")
    assert {k: attrs[k] for k in attrs if k not in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "flaky-2-429",
        "gen_ai.response.model": "flaky-2-429",
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": host,
        "server.port": int(port),
        "modeldesk.account.id": account.id,
        "modeldesk.account.label": "Traced OpenAI",
        "modeldesk.attempt.status": "ok",
    }
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert [e.name for e in ok.events] == ["gen_ai.first_token"]
    assert ok.start_time_unix_nano < ok.events[0].time_unix_nano <= ok.end_time_unix_nano
    body = b"".join(receiver.bodies)
    assert PROMPT.encode() not in body
    assert reply.strip() and reply.strip().split()[0].encode() not in body
    assert KEY.encode() not in body


def test_with_content_ticked_the_prompt_and_reply_are_sent_but_never_the_key(qtbot, modeldesk, fault_server, receiver):
    turn_on(qtbot, modeldesk.telemetry, receiver.base_url, include_content=True)
    _account, reply = chat(qtbot, modeldesk, fault_server, "ok")
    assert receiver.wait_for_spans(1)

    attrs = attributes(receiver.spans[0])
    assert PROMPT in attrs["gen_ai.input.messages"]
    assert reply.strip() and reply.strip() in attrs["gen_ai.output.messages"]
    assert KEY.encode() not in b"".join(receiver.bodies)


def test_a_collector_that_is_down_leaves_the_chat_alone(qtbot, modeldesk, fault_server):
    with OtlpReceiver() as gone:
        endpoint = gone.base_url
    turn_on(qtbot, modeldesk.telemetry, endpoint)
    _account, reply = chat(qtbot, modeldesk, fault_server, "ok")
    assert reply.strip()
    assert run(qtbot, modeldesk.telemetry.flush())
    assert modeldesk.telemetry.dropped == 1


def test_off_by_default_nothing_is_started(qtbot, modeldesk, fault_server, receiver):
    assert modeldesk.settings.current.telemetry.enabled is False
    chat(qtbot, modeldesk, fault_server, "ok")
    assert not modeldesk.telemetry.active
    assert not any(t.name == "telemetry-export" for t in threading.enumerate())
    assert receiver.requests == []


def test_the_dialog_tests_the_endpoint_and_saves(qtbot, modeldesk, receiver, memory_keyring):
    dialog = modeldesk.telemetry_menu.show_dialog()
    qtbot.waitExposed(dialog)
    dialog.endpoint.setText("localhost:4318")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("The endpoint URL"), timeout=WAIT_MS)
    assert dialog.message.text() == "The endpoint URL must start with http:// or https://."

    receiver.required_headers = {"authorization": f"Bearer {KEY}"}
    dialog.endpoint.setText(receiver.base_url)
    dialog.headers.setPlainText(f"Authorization: Bearer {KEY}\nX-Scope-OrgID: team-a")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == "The endpoint took the test span (HTTP 200).", timeout=WAIT_MS)
    assert len(receiver.spans) == 1

    dialog.enabled.setChecked(True)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Saved."), timeout=WAIT_MS)
    assert modeldesk.telemetry.active
    saved, _notice = SettingsStore(modeldesk.paths.settings_file).load()
    assert saved.telemetry == TelemetrySettings(
        enabled=True,
        endpoint=receiver.base_url,
        headers={"X-Scope-OrgID": "team-a"},
        secret_headers=("Authorization",),
    )
    assert KEY not in modeldesk.paths.settings_file.read_text()
    # Shown again, the credential's value stays hidden; Test still sends it, from the keyring.
    assert dialog.headers.toPlainText() == "X-Scope-OrgID: team-a\nAuthorization: <kept in the keyring>"
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(receiver.spans) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dialog.message.text() == "The endpoint took the test span (HTTP 200).", timeout=WAIT_MS)


def test_quitting_sends_the_spans_still_queued(qtbot, modeldesk, fault_server, receiver):
    from desktop_app.lifecycle import quit_steps

    turn_on(qtbot, modeldesk.telemetry, receiver.base_url)
    modeldesk.telemetry.interval_s = 3600  # a batch would wait an hour: only quitting sends it
    run(qtbot, modeldesk.telemetry.configure())
    chat(qtbot, modeldesk, fault_server, "ok")
    assert receiver.requests == []

    steps = dict(quit_steps(modeldesk))
    run(qtbot, steps["telemetry export"]())
    assert len(receiver.spans) == 1
    assert not modeldesk.telemetry.active
