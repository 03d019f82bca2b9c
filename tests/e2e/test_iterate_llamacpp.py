"""Iterating on turns in the whole app, in a real window, against a real llama-server (Gemma 270M):
regenerate and switch versions, edit, and a reply's "View as code" run for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from desktop_app.domain.accounts import Account
from desktop_app.domain.request_code import key_env_var
from desktop_app.ui.chat.request_code import RequestCodeDialog
from tests.e2e.test_llamacpp_chat import _close_app, _start_app
from tests.ui.conftest import WAIT_MS, run
from tests.ui.test_turn_actions import click, links
from tests.unit.test_request_code_runs import ROOT, _last_task

REPLY_MS = 120_000


def _send(qtbot, chat, text: str) -> None:
    qtbot.keyClicks(chat.composer, text)
    with qtbot.waitSignal(chat.reply_finished, timeout=REPLY_MS) as finished:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert finished.args == ["complete"]


def _run_snippet(language: str, text: str, env_var: str) -> str:
    """Run a "View as code" tab's code as a user would (Python or bash); its standard output."""
    command = [sys.executable if language == "python" else "bash", "-c", text]
    env = {**os.environ, env_var: "", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, f"{language} snippet failed:\n{done.stderr}\n---\n{text}"
    return done.stdout


def _sse_text(output: str) -> str:
    """The reply text of an OpenAI-style event stream, as curl printed it."""
    parts = []
    for line in output.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def test_regenerate_switch_edit_and_view_as_code_for_real(qtbot, qloop, llama_server):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    app = _start_app(qtbot)
    try:
        account = Account(provider_id="llamacpp", label="Local gemma", base_url=f"{llama_server.base_url}/v1")
        run(qtbot, app.accounts.save_account(account, ""))
        run(qtbot, app.accounts.refresh_models(account.id))
        app.window.show_pane("Chat")
        chat = app.chat_pane
        chat._reload_picker()
        assert chat.select_model(account.id, "gemma")
        chat.params.max_tokens.setValue(8)
        chat.params.temperature.setValue(0.0)  # greedy: a snippet's answer can be compared with the app's

        _send(qtbot, chat, "Name a colour.")
        _send(qtbot, chat, "Name another one.")
        conversation = chat.current_conversation
        first = run(qtbot, app.store.messages(conversation.id))

        # Regenerate the first reply: a second version; the branch shown ends with it.
        with qtbot.waitSignal(chat.reply_finished, timeout=REPLY_MS) as finished:
            click(chat, "turn:regenerate:1")
        assert finished.args == ["complete"]
        assert "‹ 2/2 ›" in chat.transcript.toPlainText()
        assert "Name another one." not in chat.transcript.toPlainText()
        now = run(qtbot, app.store.messages(conversation.id))
        assert [(m.role, m.version, m.versions) for m in now] == [("user", 1, 1), ("assistant", 2, 2)]
        assert now[1].id != first[1].id and now[1].content.strip()

        # Switch back: the first version with all that followed it.
        click(chat, "turn:previous:1")
        qtbot.waitUntil(lambda: "Name another one." in chat.transcript.toPlainText(), timeout=WAIT_MS)
        assert "‹ 1/2 ›" in chat.transcript.toPlainText()
        assert [m.id for m in run(qtbot, app.store.messages(conversation.id))] == [m.id for m in first]

        # Edit the second question: a new version of it, answered by the server.
        click(chat, "turn:edit:2")
        box = chat.turns.edit_box
        qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
        box.editor.selectAll()
        qtbot.keyClicks(box.editor, "Name a fruit.")
        with qtbot.waitSignal(chat.reply_finished, timeout=REPLY_MS) as finished:
            qtbot.keyClick(box.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert finished.args == ["complete"]
        edited = run(qtbot, app.store.messages(conversation.id))
        assert [(m.role, m.content if m.role == "user" else "", m.version, m.versions) for m in edited] == [
            ("user", "Name a colour.", 1, 1),
            ("assistant", "", 1, 2),
            ("user", "Name a fruit.", 2, 2),
            ("assistant", "", 1, 1),
        ]
        reply = edited[3]
        assert reply.content.strip() and reply.request is not None
        app_task = _last_task(llama_server)

        # View as code: the reply's request, run as each tab shows it, is the app's request to the server.
        request_links = [href for href, text in links(chat.transcript).items() if text == "View as code"]
        click(chat, request_links[-1])
        qtbot.waitUntil(lambda: chat.findChild(RequestCodeDialog) is not None, timeout=WAIT_MS)
        dialog = chat.findChild(RequestCodeDialog)
        qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
        assert dialog.tab_titles() == ["LiteLLM", "OpenAI SDK", "curl"]
        ran = []
        for index, title in enumerate(dialog.tab_titles()):
            view = dialog.tabs.widget(index)
            assert isinstance(view, QPlainTextEdit)
            language = view.objectName().removeprefix("snippet-")
            output = _run_snippet(language, view.toPlainText(), key_env_var("llamacpp"))
            seen = _last_task(llama_server)
            assert seen["id_task"] > app_task["id_task"], title
            assert {k: seen[k] for k in ("params", "n_prompt_tokens")} == {
                k: app_task[k] for k in ("params", "n_prompt_tokens")
            }, title
            text = _sse_text(output) if language == "shell" else output.removesuffix("\n")
            assert text == reply.content, title  # greedy: the same answer the app got
            ran.append(title)
        assert ran == ["LiteLLM", "OpenAI SDK", "curl"]
        dialog.close()
    finally:
        _close_app(qtbot, app)
