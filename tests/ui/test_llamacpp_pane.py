"""The llama.cpp pane against the real llama-server and the real Gemma 270M GGUF."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop_app.domain.llamacpp import (
    BINARY_NOT_FOUND,
    ManagedServerSpec,
    ManagedStatus,
    RouterModel,
    builtin_template_args,
    presets_ini,
)
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_managed import free_port
from desktop_app.services.local.servers import ServerHere
from desktop_app.ui.llamacpp import LlamaCppPane
from desktop_app.ui.llamacpp.models import ModelIdRole, RouterModelsModel, ServersModel, ServerSource
from desktop_app.ui.llamacpp.pane import NO_GGUF_HINT, NO_LIBRARY_MODELS, ROUTER_EMPTY, SERVERS_EMPTY
from tests.servers.llama import LlamaServer, real_artifacts
from tests.ui.conftest import run

START_MS = 60_000
GEMMA_ARGS = " ".join(builtin_template_args("gemma"))


@pytest.fixture(scope="module")
def artifacts() -> tuple[Path, Path]:
    return real_artifacts()


@pytest.fixture(scope="module")
def single() -> Iterator[LlamaServer]:
    with LlamaServer() as server:
        yield server


@pytest.fixture
def scratch_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "llama-home"
    home.mkdir()
    return {"HOME": str(home), "LLAMA_CACHE": str(home / "cache")}


@pytest.fixture
def make_pane(qtbot, qloop, scratch_env) -> Iterator[Callable[..., LlamaCppPane]]:
    panes: list[tuple[LlamaCppPane, ServerHere]] = []
    http = httpx.AsyncClient()

    def make(*, gguf_files: Sequence[Path] = (), binary: str = "", router_dir: Path | None = None) -> LlamaCppPane:
        service = LlamaCppService(http)
        here = ServerHere(service)  # owns the server the pane starts, as LocalServers does in the app
        pane = LlamaCppPane(
            llamacpp=service,
            here=here,
            gguf_files=lambda: list(gguf_files),
            binary_setting=binary,
            child_env=scratch_env,
            router_dir=router_dir,
        )
        pane.resize(1200, 750)
        panes.append((pane, here))
        return pane

    yield make
    # Not qtbot.addWidget: pytest-qt would delete the pane before qtmodeltester lets go of its models.
    for pane, here in panes:
        run(qtbot, pane.aclose(), timeout=START_MS)
        run(qtbot, here.aclose(), timeout=START_MS)
        pane.close()
        pane.deleteLater()
    run(qtbot, http.aclose())


def row_texts(model: ServersModel | RouterModelsModel, row: int) -> tuple[str, ...]:
    return tuple(model.index(row, column).data() for column in range(model.columnCount()))


def fill_form(pane: LlamaCppPane, ctx: int = 2048) -> None:
    pane.form.ctx_spin.setValue(ctx)
    pane.form.threads_spin.setValue(2)
    pane.form.extra_args_edit.setText(GEMMA_ARGS)


def managed_row(pane: LlamaCppPane) -> tuple[str, ...]:
    managed = pane.managed
    assert managed is not None
    row = pane.servers_model.row_of(managed.url)
    assert row >= 0
    return row_texts(pane.servers_model, row)


# --- without a server ----------------------------------------------------------------------------------


def test_empty_states_say_what_to_do_next(qtbot, make_pane) -> None:
    pane = make_pane()
    assert pane.servers_box.showing_empty_state and pane.servers_box.empty.label.text() == SERVERS_EMPTY
    assert pane.router_box.showing_empty_state and pane.router_box.empty.label.text() == ROUTER_EMPTY
    assert pane.router_box.empty.button.text() == "Start router over folder…"
    assert not pane.form.model_hint.isHidden() and pane.form.model_hint.text() == NO_GGUF_HINT
    assert pane.server_log.view.placeholderText()
    assert not pane.form.stop_button.isEnabled() and pane.server_log.crash_notice.isHidden()
    assert not pane.servers_box.use_in_chat_button.isEnabled()  # no server to use yet

    qtbot.mouseClick(pane.form.start_button, Qt.MouseButton.LeftButton)  # no GGUF chosen
    assert pane.form.start_status.text().startswith("Pick a GGUF file first")


def test_browse_opens_a_non_modal_dialog_and_offers_the_file(qtbot, make_pane, artifacts, tmp_path) -> None:
    pane = make_pane()
    other = tmp_path / "picked.gguf"
    other.symlink_to(artifacts[1])
    pane.form.model_browse.click()
    dialog = pane.form.file_dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    assert dialog.windowModality() == Qt.WindowModality.WindowModal  # what open() sets
    pane.form.model_browse.click()
    assert pane.form.file_dialog is dialog  # a second click does not open a second dialog
    with qtbot.waitSignal(dialog.finished):
        dialog.selectFile(str(other))
        dialog.accept()
    assert pane.form.file_dialog is None
    assert pane.form.model_combo.currentData() == str(other) and pane.form.model_hint.isHidden()


def test_a_missing_binary_is_said_in_one_sentence(qtbot, make_pane, artifacts, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    pane = make_pane(gguf_files=[artifacts[1]])
    fill_form(pane)
    qtbot.mouseClick(pane.form.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.form.start_status.text() == BINARY_NOT_FOUND)
    assert pane.servers_model.rowCount() == 0 and pane.form.start_button.isEnabled()


# --- a server somebody else started ---------------------------------------------------------------------


def test_connect_shows_the_loaded_model_and_context(qtbot, make_pane, qtmodeltester, single) -> None:
    pane = make_pane()
    qtbot.keyClicks(pane.servers_box.url_edit, f"127.0.0.1:{single.port}")
    qtbot.mouseClick(pane.servers_box.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            pane.servers_model.rowCount() == 1 and pane.servers_model.index(0, ServersModel.STATUS).data() == "Ready"
        ),
        timeout=10_000,
    )
    assert row_texts(pane.servers_model, 0) == (f"127.0.0.1:{single.port}", "gemma", "4,096", "0 of 4 busy", "Ready")
    assert not pane.servers_box.showing_empty_state
    assert pane.servers_box.selected_url() == single.base_url and pane.servers_box.remove_button.isEnabled()
    assert pane.router_box.showing_empty_state  # one model, no router
    qtmodeltester.check(pane.servers_model)
    qtmodeltester.check(pane.servers_model, force_py=True)

    port = free_port()
    assert run(qtbot, pane.connect(f"http://127.0.0.1:{port}")) is None
    assert pane.servers_box.status.text().startswith(f"Could not connect to llama-server at 127.0.0.1:{port}.")
    assert pane.servers_model.rowCount() == 1

    run(qtbot, pane.refresh())
    assert pane.servers_model.index(0, ServersModel.SLOTS).data() == "0 of 4 busy"
    # Remove asks first; the answer takes the row off and tells the app (which drops its account).
    qtbot.mouseClick(pane.servers_box.remove_button, Qt.MouseButton.LeftButton)
    box = pane.remove_dialog
    assert box is not None and box.isVisible() and pane.servers_model.rowCount() == 1
    remove = next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole)
    with qtbot.waitSignal(pane.server_removed, timeout=5_000) as removed:
        remove.click()
    assert removed.args == [single.base_url]
    assert pane.servers_model.rowCount() == 0 and pane.servers_box.showing_empty_state


def test_one_server_connected_under_two_loopback_names_is_one_row(qtbot, make_pane, single) -> None:
    pane = make_pane()
    assert run(qtbot, pane.connect(f"127.0.0.1:{single.port}")) is not None
    assert run(qtbot, pane.connect(f"localhost:{single.port}/v1")) is not None
    assert pane.servers_model.rowCount() == 1
    assert pane.servers_model.row_of(f"http://0.0.0.0:{single.port}") == 0


# --- a server of its own -------------------------------------------------------------------------------


def test_start_from_the_form_see_the_log_switch_and_stop(qtbot, make_pane, artifacts, tmp_path) -> None:
    binary, gguf = artifacts
    other = tmp_path / "gemma-other.gguf"
    other.symlink_to(gguf)
    pane = make_pane(gguf_files=[gguf], binary=str(binary))
    fill_form(pane)
    with qtbot.waitSignal(
        pane.server_state_changed, timeout=START_MS, check_params_cb=lambda status: status == "running"
    ):
        qtbot.mouseClick(pane.form.start_button, Qt.MouseButton.LeftButton)
    managed = pane.managed
    assert managed is not None and managed.pid is not None
    first_pid = managed.pid
    log = pane.server_log.view.toPlainText()
    assert log.startswith("$ ") and "listening" in log
    assert not pane.form.start_button.isEnabled() and pane.form.stop_button.isEnabled()
    qtbot.waitUntil(lambda: managed_row(pane)[2] == "2,048")
    assert managed_row(pane)[4] == "Ready (started here)"
    assert pane.servers_model.row_at(0).source is ServerSource.MANAGED

    # Another file: the server restarts on it.
    state = run(qtbot, pane.switch_managed_model(other), timeout=START_MS)
    assert state is not None and state.status.value == "running"
    assert pane.form.model_combo.currentData() == str(other)
    row = pane.servers_model.row_of(managed.url)
    assert pane.servers_model.index(row, ServersModel.MODEL).data(Qt.ItemDataRole.ToolTipRole) == str(other)
    assert managed.pid != first_pid and not psutil.pid_exists(first_pid)

    last_pid = managed.pid
    with qtbot.waitSignal(
        pane.server_state_changed, timeout=START_MS, check_params_cb=lambda status: status == "stopped"
    ):
        qtbot.mouseClick(pane.form.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.servers_model.rowCount() == 0)
    assert last_pid is not None and not psutil.pid_exists(last_pid)
    assert pane.servers_box.showing_empty_state and pane.form.start_button.isEnabled()


def test_a_crash_shows_a_notice_and_restart_brings_it_back(qtbot, make_pane, artifacts) -> None:
    binary, gguf = artifacts
    pane = make_pane(gguf_files=[gguf], binary=str(binary))
    spec = ManagedServerSpec(
        model=gguf,
        binary=str(binary),
        ctx=2048,
        threads=2,
        extra_args=builtin_template_args("gemma"),
        env=pane.spec_from_form().env,
    )
    state = run(qtbot, pane.start_managed(spec), timeout=START_MS)
    assert state is not None
    pid = pane.managed.pid
    with qtbot.waitSignal(
        pane.server_state_changed, timeout=15_000, check_params_cb=lambda status: status == "crashed"
    ):
        os.kill(pid, signal.SIGKILL)
    assert pane.server_log.crash_notice.isVisibleTo(pane)
    assert pane.server_log.crash_label.text().startswith("llama-server stopped unexpectedly (signal 9 (killed)).")
    assert managed_row(pane)[4] == "Crashed (signal 9 (killed))"
    assert (
        pane.server_log.restart_button.isEnabled()
        and pane.form.start_button.isEnabled()
        and not pane.form.stop_button.isEnabled()
    )

    with qtbot.waitSignal(
        pane.server_state_changed, timeout=START_MS, check_params_cb=lambda status: status == "running"
    ):
        qtbot.mouseClick(pane.server_log.restart_button, Qt.MouseButton.LeftButton)
    assert pane.server_log.crash_notice.isHidden()
    assert pane.managed.pid != pid
    qtbot.waitUntil(lambda: managed_row(pane)[4] == "Ready (started here)")


def test_router_over_a_folder_load_unload_and_switch(qtbot, make_pane, qtmodeltester, artifacts, tmp_path) -> None:
    binary, gguf = artifacts
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("gemma-a.gguf", "gemma-b.gguf"):
        (folder / name).symlink_to(gguf)
    pane = make_pane(binary=str(binary))
    fill_form(pane)  # the router passes these arguments on to every model it loads

    pane.router_box.empty_button.click()
    dialog = pane.form.file_dialog
    assert isinstance(dialog, QFileDialog) and dialog.fileMode() == QFileDialog.FileMode.Directory
    with qtbot.waitSignal(pane.router_models_changed, timeout=START_MS):
        dialog.fileSelected.emit(str(folder))  # what choosing the folder and pressing Choose does
        dialog.reject()
    model = pane.router_model
    assert [row_texts(model, r)[:2] for r in range(model.rowCount())] == [
        ("gemma-a", "Not loaded"),
        ("gemma-b", "Not loaded"),
    ]
    assert not pane.router_box.showing_empty_state and pane.router_url == pane.managed.url
    assert not pane.router_box.load_button.isEnabled()  # nothing selected yet

    pane.router_box.select_model("gemma-a")
    assert pane.router_box.load_button.isEnabled() and not pane.router_box.unload_button.isEnabled()
    qtbot.mouseClick(pane.router_box.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.index(0, RouterModelsModel.STATUS).data() == "Loaded", timeout=START_MS)
    qtbot.waitUntil(lambda: managed_row(pane)[1] == "2 models (gemma-a)")
    assert pane.router_box.unload_button.isEnabled() and not pane.router_box.load_button.isEnabled()
    qtmodeltester.check(model)

    qtbot.mouseClick(pane.router_box.unload_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.index(0, RouterModelsModel.STATUS).data() == "Not loaded", timeout=START_MS)
    assert pane.router_box.load_button.isEnabled() and not pane.router_box.unload_button.isEnabled()

    assert run(qtbot, pane.router_load("gemma-a"), timeout=START_MS)
    pane.router_box.select_model("gemma-b")
    qtbot.mouseClick(pane.router_box.switch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: [model.index(r, RouterModelsModel.STATUS).data() for r in range(2)] == ["Not loaded", "Loaded"],
        timeout=START_MS,
    )
    qtmodeltester.check(model, force_py=True)


def test_router_models_are_shown_without_bidi_overrides_and_keep_their_real_id() -> None:
    model = RouterModelsModel()
    model.set_models([RouterModel(id="trick-\u202egpj", path="/models/trick-\u202egpj.gguf")])
    index = model.index(0, RouterModelsModel.MODEL)
    assert index.data() == "trick-gpj"  # U+202E would show it as "trick-jpg"
    assert index.data(Qt.ItemDataRole.ToolTipRole) == "/models/trick-gpj.gguf"
    assert index.data(ModelIdRole) == "trick-\u202egpj"  # what loading it must send


def test_a_file_named_with_a_bidi_override_is_listed_without_it_and_still_loads(
    qtbot, make_pane, artifacts, tmp_path
) -> None:
    binary, gguf = artifacts
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "trick-\u202egpj.gguf").symlink_to(gguf)
    pane = make_pane(binary=str(binary))
    fill_form(pane)
    pane.router_box.empty_button.click()
    with qtbot.waitSignal(pane.router_models_changed, timeout=START_MS):
        pane.form.file_dialog.fileSelected.emit(str(folder))
        pane.form.file_dialog.reject()

    model = pane.router_model
    assert row_texts(model, 0)[:2] == ("trick-gpj", "Not loaded")
    pane.router_box.select_model("trick-\u202egpj")
    qtbot.mouseClick(pane.router_box.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.index(0, RouterModelsModel.STATUS).data() == "Loaded", timeout=START_MS)
    assert "trick-gpj" in pane.server_log.view.toPlainText() and "\u202e" not in pane.server_log.view.toPlainText()


# --- the chat and a server of its own that switches models ----------------------------------------------


def test_a_chat_sent_while_the_server_switches_models_waits_and_answers(
    qtbot, modeldesk, artifacts, scratch_env, tmp_path
) -> None:
    binary, gguf = artifacts
    other = tmp_path / "gemma-b.gguf"
    os.symlink(gguf, other)
    pane, chat = modeldesk.llamacpp_pane, modeldesk.chat_pane
    modeldesk.window.show_pane("llama.cpp")
    spec = ManagedServerSpec(
        model=gguf,
        binary=str(binary),
        ctx=2048,
        threads=2,
        alias="gemma",
        extra_args=builtin_template_args("gemma"),
        env=scratch_env,
    )
    assert run(qtbot, pane.start_managed(spec), timeout=START_MS) is not None
    managed = pane.managed
    pane.servers_box.view.selectRow(pane.servers_model.row_of(managed.url))
    qtbot.waitUntil(pane.servers_box.use_in_chat_button.isEnabled, timeout=5_000)
    pane.servers_box.use_in_chat_button.click()
    qtbot.waitUntil(lambda: modeldesk.window.stack.currentWidget() is chat, timeout=20_000)
    account = next(a for a in modeldesk.accounts.accounts if a.provider_id == "llamacpp")
    assert chat.select_model(account.id, "gemma")
    chat.params.max_tokens.setValue(8)
    chat.params.temperature.setValue(0.0)  # greedy: a sampled reply can be 8 tokens of blank lines
    notice = (
        f"llama-server at {managed.url.removeprefix('http://')} is restarting with another model; "
        "the reply starts when it is ready."
    )

    # The old process is held (SIGSTOP: it cannot act on the SIGTERM yet), so the restart is surely
    # still under way when the chat is sent; it is let go once the chat says that it waits.
    old_pid = managed.pid
    assert old_pid is not None
    old = psutil.Process(old_pid)  # signals only this very process, even if its PID were reused
    old.suspend()
    held = True
    try:
        switch = asyncio.ensure_future(pane.switch_managed_model(other))
        qtbot.waitUntil(lambda: modeldesk.llamacpp.restarting(account.effective_base_url), timeout=5_000)
        qtbot.keyClicks(chat.composer, "Hello")
        with qtbot.waitSignal(chat.reply_finished, timeout=START_MS) as finished:
            qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
            qtbot.waitUntil(lambda: notice in chat.notice.text(), timeout=20_000)
            assert chat.streaming and managed.restarting
            old.resume()
            held = False
    finally:
        if held:
            with contextlib.suppress(psutil.NoSuchProcess):
                old.resume()

    transcript = chat.transcript.toPlainText()
    assert finished.args == ["complete"], transcript[-400:]
    assert chat.transcript.plain_text_of_last_message().strip(), transcript[-400:]
    assert "8 out tokens" in transcript
    assert "Could not connect" not in transcript and "Retry" not in transcript
    assert notice in chat.notice.text() and chat.notice.isVisibleTo(chat)
    qtbot.waitUntil(switch.done, timeout=START_MS)
    assert switch.result().status is ManagedStatus.RUNNING
    assert managed.spec.model == other and managed.pid != old_pid and not psutil.pid_exists(old_pid)


def test_a_router_over_the_whole_gguf_library(qtbot, make_pane, artifacts, tmp_path) -> None:
    binary, gguf = artifacts
    first, second = tmp_path / "lmstudio", tmp_path / "hub"
    first.mkdir()
    second.mkdir()
    (first / "gemma3.gguf").symlink_to(gguf)
    (second / "gemma3.gguf").symlink_to(gguf)  # the same file name in another folder
    (second / "mmproj-gemma3.gguf").symlink_to(gguf)  # a projector, not a chat model
    files = [first / "gemma3.gguf", second / "gemma3.gguf", second / "mmproj-gemma3.gguf"]
    pane = make_pane(gguf_files=files, binary=str(binary), router_dir=tmp_path / "GGUF library")
    fill_form(pane)
    assert pane.router_box.showing_empty_state and not pane.router_box.library_empty_button.isHidden()
    with qtbot.waitSignal(pane.router_models_changed, timeout=START_MS):
        pane.router_box.library_empty_button.click()
    model = pane.router_model
    assert sorted(row_texts(model, r)[:2] for r in range(model.rowCount())) == [
        ("gemma3", "Not loaded"),
        ("hub-gemma3", "Not loaded"),
    ]
    assert managed_row(pane)[4] == "Router (started here)"
    # One server of our own at a time: neither way to start another router is offered now.
    assert (
        not pane.router_box.start_library_router_button.isEnabled()
        and not pane.router_box.start_router_button.isEnabled()
    )
    assert run(qtbot, pane.router_load("hub-gemma3"), timeout=START_MS)
    qtbot.waitUntil(
        lambda: model.index(model.row_of("hub-gemma3"), RouterModelsModel.STATUS).data() == "Loaded", timeout=START_MS
    )


def test_a_router_over_an_empty_library_says_what_to_do(qtbot, make_pane, artifacts, tmp_path) -> None:
    binary, _gguf = artifacts
    pane = make_pane(binary=str(binary), router_dir=tmp_path / "GGUF library")
    assert run(qtbot, pane.start_router_over_library()) is None
    assert pane.form.start_status.text() == NO_LIBRARY_MODELS
    assert pane.managed is None


def test_a_router_that_stops_answering_is_shown_gone_until_it_answers_again(
    qtbot, make_pane, artifacts, tmp_path, scratch_env
) -> None:
    binary, gguf = artifacts
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "gemma-a.gguf").symlink_to(gguf)
    http = httpx.AsyncClient()
    # A router started elsewhere (by this test, which alone signals it), connected to by address.
    elsewhere = LlamaCppService(http).managed(
        ManagedServerSpec(
            models_dir=folder,
            binary=str(binary),
            ctx=2048,
            threads=2,
            env=scratch_env,
            presets=presets_ini({"*": {"jinja": False, "chat-template": "gemma"}}),
        )
    )
    try:
        run(qtbot, elsewhere.start(), timeout=START_MS)
        pane = make_pane(binary=str(binary))
        run(qtbot, pane.connect(elsewhere.url), timeout=START_MS)
        assert run(qtbot, pane.router_load("gemma-a"), timeout=START_MS)
        pane.router_box.select_model("gemma-a")
        assert pane.router_box.unload_button.isEnabled()

        run(qtbot, elsewhere.stop(), timeout=START_MS)
        run(qtbot, pane.refresh(), timeout=START_MS)  # what the pane's timer does every few seconds
        assert pane.router_model.rowCount() == 0, "no model is shown as loaded on a router that is gone"
        assert not any(
            b.isEnabled()
            for b in (pane.router_box.load_button, pane.router_box.unload_button, pane.router_box.switch_button)
        )
        assert pane.router_box.status.text() == (
            f"Could not connect to llama-server at {elsewhere.url[7:]}. "
            "Check that it is running and that the address and port are right."
        )

        run(qtbot, elsewhere.start(), timeout=START_MS)  # same port
        run(qtbot, pane.refresh(), timeout=START_MS)
        assert [row_texts(pane.router_model, 0)[:2]] == [("gemma-a", "Not loaded")]
        assert pane.router_box.status.text() == "" and pane.router_box.status.isHidden()
        pane.router_box.select_model("gemma-a")
        assert pane.router_box.load_button.isEnabled()
    finally:
        run(qtbot, elsewhere.stop(), timeout=START_MS)
        run(qtbot, http.aclose())


def test_the_server_started_here_belongs_to_the_app_not_the_pane(qtbot, qloop, artifacts, scratch_env) -> None:
    from desktop_app.app import ModelDeskApp
    from desktop_app.services.paths import AppPaths

    binary, gguf = artifacts
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    closed = False
    try:
        run(qtbot, app.start())
        pane = app.llamacpp_pane
        spec = ManagedServerSpec(
            model=gguf,
            binary=str(binary),
            ctx=2048,
            threads=2,
            alias="gemma",
            extra_args=builtin_template_args("gemma"),
            env=scratch_env,
        )
        assert run(qtbot, pane.start_managed(spec), timeout=START_MS) is not None
        managed = pane.managed
        assert managed is app.local.here.server and managed.pid is not None
        pid = managed.pid
        run(qtbot, pane.aclose())  # the pane lets go of it...
        assert managed.state.status is ManagedStatus.RUNNING and psutil.pid_exists(pid)
        closed = True
        assert run(qtbot, app.aclose(), timeout=START_MS) == []  # ...quitting stops it
        assert managed.state.status is ManagedStatus.STOPPED and not psutil.pid_exists(pid)
    finally:
        if not closed:
            run(qtbot, app.aclose(), timeout=START_MS)
        app.window.close()
        app.window.deleteLater()
