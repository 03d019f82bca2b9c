"""The context gauge under the composer: the conversation and the draft counted by LiteLLM for the
picked model, against its context window; over the window, Send asks first."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop_app.domain.accounts import Account
from desktop_app.services.chat.llm import litellm_model_name
from desktop_app.services.litellm_engine import estimate_tokens
from tests.ui.conftest import WAIT_MS, run

GPT_4_WINDOW = 8_192  # LiteLLM's map: gpt-4 takes 8,192 input tokens


def _chat_requests(server) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def test_the_gauge_counts_the_conversation_and_the_draft_as_litellm_does(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    pane.params.system_prompt.setPlainText("Be brief.")
    pane.composer.setPlainText("first question")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    reply = run(qtbot, modeldesk.store.messages(pane.current_conversation.id))[-1].content  # as it is sent next

    qtbot.keyClicks(pane.composer, "and a follow-up")
    gauge = pane.context_gauge
    litellm = run(qtbot, modeldesk.engine.litellm(), timeout=120_000)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "and a follow-up"},
    ]
    expected = estimate_tokens(litellm, litellm_model_name(fault_account, "ok"), messages=messages)
    # LiteLLM knows no window for a local server's model: the count alone.
    qtbot.waitUntil(lambda: gauge.text() == f"{expected:,} tokens", timeout=WAIT_MS)
    assert gauge.isVisibleTo(pane) and not gauge.over


def test_over_the_models_window_send_asks_first(qtbot, modeldesk, fault_server):
    pane = modeldesk.chat_pane
    account = Account(provider_id="openai", label="OpenAI lab", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, "sk-test"))
    modeldesk.catalog._remember(account.id, ("gpt-4",))  # the lab server answers any model it does not list
    pane._reload_picker()
    assert pane.select_model(account.id, "gpt-4")
    gauge = pane.context_gauge

    pane.composer.setPlainText("short")
    qtbot.waitUntil(lambda: gauge.text().endswith(f" / {GPT_4_WINDOW:,} tokens"), timeout=120_000)
    assert not gauge.over
    pane.composer.setPlainText("word " * 9_000)
    qtbot.waitUntil(lambda: gauge.over, timeout=WAIT_MS)
    tokens = gauge.tokens
    assert tokens > GPT_4_WINDOW and gauge.text() == f"{tokens:,} / {GPT_4_WINDOW:,} tokens"

    # Cancel: nothing is sent and the message stays.
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gauge.confirm_box is not None and gauge.confirm_box.isVisible(), timeout=WAIT_MS)
    assert gauge.confirm_box.text() == (
        f"This conversation is about {tokens:,} tokens, more than the model's window of {GPT_4_WINDOW:,}; send anyway?"
    )
    gauge.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    assert gauge.confirm_box is None and not pane.streaming
    assert _chat_requests(fault_server) == [] and pane.composer.toPlainText().startswith("word word")

    # Send anyway: it goes.
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gauge.confirm_box is not None and gauge.confirm_box.isVisible(), timeout=WAIT_MS)
    [send_anyway] = [b for b in gauge.confirm_box.buttons() if b.text() == "Send anyway"]
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as finished:
        send_anyway.click()
    assert finished.args == ["complete"] and len(_chat_requests(fault_server)) == 1


def test_the_gauge_never_loads_litellm_itself(qtbot, modeldesk, fault_account):
    """Opening a conversation at start-up shows no count: LiteLLM (~160 MB) waits for a keystroke."""
    pane = modeldesk.chat_pane
    run(qtbot, pane.new_conversation())
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.context_gauge.refresh())
    assert not modeldesk.engine.started and not pane.context_gauge.isVisibleTo(pane)


def _counted_draft(qtbot, app, account, model: str) -> str:
    """Pick `model`, write a draft, and return what the gauge shows once it has counted it."""
    pane = app.chat_pane
    assert pane.select_model(account.id, model)
    run(qtbot, app.engine.litellm(), timeout=120_000)
    pane.composer.setPlainText("count me")
    qtbot.waitUntil(lambda: pane.context_gauge.text().endswith("tokens"), timeout=WAIT_MS)
    return pane.context_gauge.text()


def test_no_count_runs_while_a_reply_is_on_its_way_and_one_follows_its_end(qtbot, modeldesk, fault_account):
    """The tokenizer would compete with the request for the interpreter: the count waits for the end."""
    pane = modeldesk.chat_pane
    gauge = pane.context_gauge
    counted = _counted_draft(qtbot, modeldesk, fault_account, "slow")
    with qtbot.waitSignal(pane.reply_started, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(pane.composer, "typed while it streams")
    qtbot.waitUntil(lambda: not gauge._timer.isActive(), timeout=WAIT_MS)  # the debounce ended
    qtbot.waitUntil(lambda: gauge._task is None or gauge._task.done(), timeout=WAIT_MS)  # no count under way
    assert pane.streaming and gauge.text() == counted  # and nothing was counted
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000):
        pane.stop()
    qtbot.waitUntil(lambda: gauge.text() != counted, timeout=WAIT_MS)


def test_no_count_runs_while_a_comparison_still_streams_and_one_follows_its_end(qtbot, modeldesk, fault_account):
    """A column that ends says so as a reply's end does; the gauge still waits for the others (a count
    loads a tokenizer and collects garbage, which stalled the columns still streaming)."""
    pane = modeldesk.chat_pane
    gauge = pane.context_gauge
    counted = _counted_draft(qtbot, modeldesk, fault_account, "ok")
    qtbot.mouseClick(pane.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.comparing, timeout=WAIT_MS)
    view = pane.compare
    assert view.columns[0].set_target(fault_account.id, "ok") and view.columns[1].set_target(fault_account.id, "slow")
    view.composer.setPlainText("Compare me")
    with qtbot.waitSignal(view.column_finished, timeout=30_000) as first:
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    assert first.args == [1, "complete"]
    qtbot.waitUntil(lambda: not gauge.scheduled, timeout=WAIT_MS)  # the debounce ended
    qtbot.waitUntil(lambda: not gauge.counting, timeout=WAIT_MS)
    assert view.streaming and gauge.text() == counted  # and nothing was counted
    with qtbot.waitSignal(view.turn_finished, timeout=60_000):
        view.stop()
    qtbot.waitUntil(lambda: gauge.text() != counted, timeout=WAIT_MS)
    pane.composer.clear()  # no draft: the next count lets its tokenizer go, as after any reply
    qtbot.waitUntil(lambda: not gauge.scheduled and not gauge.counting, timeout=WAIT_MS)


def _loaded_encodings() -> list[str]:
    """The tiktoken encodings loaded (the unit test of `release_tokenizers` shows they die with it)."""
    import tiktoken.registry

    return sorted(tiktoken.registry.ENCODINGS)


def test_the_tokenizer_is_kept_while_a_draft_is_written_and_let_go_once_the_reply_has_ended(
    qtbot, modeldesk, fault_account
):
    """A tokenizer is 20 MB or more: it is held while the user writes, and not while they read."""
    pane = modeldesk.chat_pane
    gauge = pane.context_gauge
    assert pane.select_model(fault_account.id, "ok")
    litellm = run(qtbot, modeldesk.engine.litellm(), timeout=120_000)
    pane.composer.setPlainText("count me")
    assert gauge.scheduled
    qtbot.waitUntil(lambda: not gauge.scheduled and not gauge.counting, timeout=WAIT_MS)
    # LiteLLM's choice for an unknown model (a test before may have left another one loaded).
    assert gauge.tokens is not None and "cl100k_base" in _loaded_encodings()

    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not gauge.scheduled and not gauge.counting, timeout=WAIT_MS)
    assert gauge.tokens is not None and gauge.tokens > 0  # the conversation is counted...
    assert _loaded_encodings() == []  # ...and the tokenizer let go

    # Writing again loads it again, and counts as before.
    qtbot.keyClicks(pane.composer, "more")
    history = [m.as_dict() for m in run(qtbot, modeldesk.chat.history(pane.current_conversation.id))]
    expected = estimate_tokens(
        litellm, litellm_model_name(fault_account, "ok"), messages=[*history, {"role": "user", "content": "more"}]
    )
    qtbot.waitUntil(lambda: gauge.text() == f"{expected:,} tokens", timeout=WAIT_MS)
