"""The Ollama pane over the real OllamaService and the loopback Ollama server, on a qasync loop."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView, QMessageBox

from desktop_app.domain.ollama import OllamaHost, PullProgress, PullState
from desktop_app.services.local.ollama import OllamaService
from desktop_app.ui.ollama import (
    InstalledModelsModel,
    OllamaPane,
    PullJobsModel,
    RunningModelsModel,
)
from desktop_app.ui.ollama.models import ProgressRole
from desktop_app.ui.ollama.pane import NO_MODELS_HINT, SUGGESTED_MODEL
from tests.servers.ollama_server import OllamaServer, catalog_model
from tests.ui.conftest import close_after, run

INSTALLED = ("llama3.2:1b", "gemma3:270m", "qwen2.5:0.5b", "mistral:latest", "nomic-embed-text:latest")
TIMEOUT = 20_000


def plenty_of_disk(_path: str) -> SimpleNamespace:
    return SimpleNamespace(total=10**12, used=10**11, free=9 * 10**11)


@pytest.fixture(autouse=True)
def asyncgen_finalizer(qloop) -> Iterator[None]:
    """Close abandoned async generators on the loop, as asyncio's own run_forever arranges.

    qasync never installs these hooks. Without them an httpx stream that the ollama client
    abandons (it raises on an {"error": ...} line while its line iterator is suspended) is
    finalized synchronously, and httpcore's clean-up, which awaits, fails with "async generator
    ignored GeneratorExit".
    """

    def finalize(agen) -> None:
        if not qloop.is_closed():
            qloop.create_task(agen.aclose())

    previous = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=None, finalizer=finalize)
    yield
    sys.set_asyncgen_hooks(*previous)


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(installed=INSTALLED, tick_s=0.002, bytes_per_tick=100_000) as srv:
        yield srv


@pytest.fixture
def make_service(qtbot, qloop, tmp_path: Path) -> Iterator[Callable[[str], OllamaService]]:
    services: list[OllamaService] = []

    async def no_wait(_seconds: float) -> None:
        return None

    def make(url: str) -> OllamaService:
        service = OllamaService(
            OllamaHost(url=url),
            state_file=tmp_path / "ollama-pulls.json",
            sleep=no_wait,
            disk_usage=plenty_of_disk,
            models_dir=tmp_path,
        )
        services.append(service)
        return service

    yield make
    for service in services:
        run(qtbot, service.aclose())


@pytest.fixture
def make_pane(qtbot, make_service) -> Callable[[str], OllamaPane]:
    def make(url: str) -> OllamaPane:
        pane = OllamaPane(ollama=make_service(url))
        qtbot.addWidget(pane, before_close_func=close_after(qtbot))
        pane.resize(1200, 750)
        pane.show()
        qtbot.waitExposed(pane)
        with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
            run(qtbot, pane.refresh())
        return pane

    return make


@pytest.fixture
def pane(server: OllamaServer, make_pane) -> OllamaPane:
    return make_pane(server.base_url)


def column(view: QAbstractItemView, col: int = 0) -> list[str]:
    model = view.model()
    return [model.index(row, col).data() for row in range(model.rowCount())]


def job_button(pane: OllamaPane, name: str, action: str) -> QPoint:
    model = pane.jobs_model
    row = model.names().index(name)
    rect = pane.pulls.view.visualRect(model.index(row, 0))
    progress = model.progress_of(name)
    assert progress is not None
    return pane.pulls.delegate.button_rects(rect, progress)[action].center()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the models ---------------------------------------------------------------------------------


def test_the_models_pass_the_model_tester(qtbot, qtmodeltester, pane: OllamaPane) -> None:
    run(qtbot, pane.load("gemma3:270m"))
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT):
        run(qtbot, pane.pull("tiny"))
    for model in (pane.installed_model, pane.installed_proxy, pane.running_model, pane.jobs_model):
        assert model.rowCount() > 0
        qtmodeltester.check(model)
    for empty in (InstalledModelsModel(), RunningModelsModel(), PullJobsModel()):
        qtmodeltester.check(empty)
    # The Python tester too, on a model of our own: the pane's go with the pane, before the
    # tester's clean-up.
    standalone = InstalledModelsModel()
    standalone.set_rows([pane.installed_model.row_at(r) for r in range(pane.installed_model.rowCount())])
    qtmodeltester.check(standalone, force_py=True)


def test_installed_models_are_listed_filtered_and_sorted(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    assert pane.host_bar.status_label.text() == f"Ollama 0.12.6 at 127.0.0.1:{server.port}"
    assert not pane.showing_empty_state
    assert sorted(column(pane.installed_view)) == sorted(INSTALLED)
    assert column(pane.installed_view) == sorted(INSTALLED)  # by name at first

    pane.installed_view.sortByColumn(InstalledModelsModel.SIZE, Qt.SortOrder.DescendingOrder)
    assert column(pane.installed_view)[:2] == ["mistral:latest", "llama3.2:1b"]
    assert column(pane.installed_view, InstalledModelsModel.SIZE)[0] == "4.1 GB"
    pane.installed_view.sortByColumn(InstalledModelsModel.PARAMETERS, Qt.SortOrder.AscendingOrder)
    assert column(pane.installed_view)[0] == "nomic-embed-text:latest"  # 137M

    qtbot.keyClicks(pane.filter_edit, "LLAMA")  # any column: mistral's family is llama
    assert column(pane.installed_view) == ["llama3.2:1b", "mistral:latest"]
    pane.filter_edit.clear()
    qtbot.keyClicks(pane.filter_edit, "QWEN")
    assert column(pane.installed_view) == ["qwen2.5:0.5b"]
    pane.filter_edit.clear()
    qtbot.keyClicks(pane.filter_edit, "gemma3")  # family matches too
    assert column(pane.installed_view) == ["gemma3:270m"]
    pane.filter_edit.clear()
    assert len(column(pane.installed_view)) == len(INSTALLED)


def test_selecting_a_model_shows_its_details(qtbot, pane: OllamaPane) -> None:
    with qtbot.waitSignal(pane.details_shown, timeout=TIMEOUT) as shown:
        assert pane.select_installed("gemma3:270m")
    assert shown.args == ["gemma3:270m"]
    assert pane.details.title.text() == "gemma3:270m"
    assert pane.details.context_label.text() == "32,768 tokens"
    assert pane.details.capabilities_label.text() == "completion"
    assert pane.details.architecture_label.text() == "gemma3 · 268.10M · Q8_0"
    assert pane.details.system_text.toPlainText() == "You are a helpful assistant."
    assert "{{ .Prompt }}" in pane.details.template_text.toPlainText()
    assert "temperature" in pane.details.parameters_text.toPlainText()
    assert pane.details.license_text.toPlainText().startswith("MIT License")
    assert pane.details.modelfile_text.isReadOnly()
    assert pane.details.modelfile_text.toPlainText().startswith("# Modelfile generated by")


def test_a_pull_reaches_100_percent_and_the_list_refreshes(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    server.bytes_per_tick = 20_000
    seen: list[PullProgress] = []
    pane.jobs_model.dataChanged.connect(lambda top, _bottom, _roles: seen.append(top.data(ProgressRole)))
    qtbot.keyClicks(pane.pulls.edit, "tiny")
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(pane.pulls.button, Qt.MouseButton.LeftButton)
    assert finished.args == ["tiny:latest", "done"]
    assert pane.pulls.edit.text() == ""
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and 0 < fractions[len(fractions) // 2] < 1
    final = pane.jobs_model.progress_of("tiny:latest")
    assert final is not None and final.fraction == 1.0 and final.state is PullState.DONE
    assert "tiny:latest" in column(pane.installed_view)
    assert pane.status_label.text() == "Pulled tiny:latest."
    assert pane.pulls.view.grab().width() > 0  # paints the finished row without a warning


def test_a_hugging_face_model_is_pulled_by_its_hf_co_name(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    name = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"
    server.add_to_catalog(catalog_model(name, 2_000_000, parameter_size="1.2B"))
    qtbot.keyClicks(pane.pulls.edit, name)
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        pane.pulls.edit.returnPressed.emit()
    assert finished.args == [name, "done"]
    assert name in column(pane.installed_view)
    assert server.installed_names().count(name) == 1


def test_cancel_and_resume_from_the_job_row(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    server.bytes_per_tick = 10_000
    weights = server.layers_of("tiny")[0].digest
    run(qtbot, pane.pull("tiny"))
    qtbot.waitUntil(
        lambda: pane.jobs_model.progress_of("tiny:latest").layers.get(weights, (0, 0))[0] >= 300_000, timeout=TIMEOUT
    )
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(
            pane.pulls.view.viewport(), Qt.MouseButton.LeftButton, pos=job_button(pane, "tiny:latest", "cancel")
        )
    assert finished.args == ["tiny:latest", "cancelled"]
    paused = pane.jobs_model.progress_of("tiny:latest")
    assert paused is not None and paused.state is PullState.CANCELLED
    before = paused.layers[weights][0]
    assert "Resume continues from there" in pane.jobs_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)

    server.bytes_per_tick = 200_000
    resumed: list[int] = []
    pane.jobs_model.dataChanged.connect(
        lambda top, _b, _r: resumed.append(top.data(ProgressRole).layers.get(weights, (-1, 0))[0])
    )
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(
            pane.pulls.view.viewport(), Qt.MouseButton.LeftButton, pos=job_button(pane, "tiny:latest", "resume")
        )
    assert finished.args == ["tiny:latest", "done"]
    first_with_bytes = next(value for value in resumed if value >= 0)
    assert first_with_bytes >= before, "the resumed pull continued from the bytes already fetched"

    qtbot.mouseClick(
        pane.pulls.view.viewport(), Qt.MouseButton.LeftButton, pos=job_button(pane, "tiny:latest", "remove")
    )
    qtbot.waitUntil(lambda: pane.jobs_model.rowCount() == 0, timeout=TIMEOUT)
    assert pane.pulls.hint.isVisible()


def test_a_failed_pull_says_why(qtbot, pane: OllamaPane) -> None:
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        run(qtbot, pane.pull("no-such-model"))
    assert finished.args == ["no-such-model:latest", "failed"]
    assert pane.status_label.text().startswith("Ollama's library has no model named no-such-model:latest.")
    tooltip = pane.jobs_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith("Ollama's library has no model named")


def test_delete_asks_first_without_blocking(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    assert pane.select_installed("qwen2.5:0.5b")
    qtbot.mouseClick(pane.delete_button, Qt.MouseButton.LeftButton)
    dialog = pane.delete_dialog
    assert isinstance(dialog, QMessageBox) and dialog.isVisible()
    assert dialog.text() == "Delete qwen2.5:0.5b from Ollama?"
    cancel = dialog.button(QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.delete_dialog is None)
    assert "qwen2.5:0.5b" in server.installed_names()

    qtbot.mouseClick(pane.delete_button, Qt.MouseButton.LeftButton)
    dialog = pane.delete_dialog
    assert dialog is not None
    delete = next(b for b in dialog.buttons() if b.text() == "Delete")
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    assert "qwen2.5:0.5b" not in server.installed_names()
    assert "qwen2.5:0.5b" not in column(pane.installed_view)
    assert pane.status_label.text() == "Deleted qwen2.5:0.5b."


def test_copy_through_the_name_dialog(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    assert pane.select_installed("llama3.2:1b")
    qtbot.mouseClick(pane.copy_button, Qt.MouseButton.LeftButton)
    dialog = pane.copy_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.textValue() == "llama3.2-copy:1b"
    dialog.setTextValue("my-llama")
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        dialog.accept()
    assert "my-llama:latest" in server.installed_names()
    assert pane.selected_installed() == "my-llama:latest"


def test_load_then_unload_from_the_running_table(qtbot, server: OllamaServer, pane: OllamaPane) -> None:
    assert pane.running_hint.isVisible() and not pane.unload_button.isEnabled()
    assert pane.select_installed("gemma3:270m")
    qtbot.mouseClick(pane.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.running_model.rowCount() == 1, timeout=TIMEOUT)
    assert column(pane.running_view) == ["gemma3:270m"]
    assert column(pane.running_view, RunningModelsModel.PROCESSOR) == ["100% GPU"]
    assert column(pane.running_view, RunningModelsModel.VRAM) == [column(pane.running_view, RunningModelsModel.SIZE)[0]]
    assert re.fullmatch(r"in [45] min", column(pane.running_view, RunningModelsModel.UNTIL)[0])
    assert pane.selected_running() == "gemma3:270m" and pane.unload_button.isEnabled()

    qtbot.mouseClick(pane.unload_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.running_model.rowCount() == 0, timeout=TIMEOUT)
    assert server.running_names() == []
    assert pane.status_label.text() == "gemma3:270m is unloaded."


def test_a_host_that_is_down_is_said_in_one_sentence(qtbot, make_pane) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    pane = make_pane(url)
    sentence = (
        f"Could not reach Ollama at {OllamaHost(url).address}. Start it with `ollama serve` or check the address."
    )
    assert pane.host_bar.status_label.text() == sentence
    assert pane.showing_empty_state and pane.empty_label.text() == sentence
    assert pane.empty_button.text() == "Try again"
    assert not pane.pulls.button.isEnabled() and not pane.load_button.isEnabled()
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        qtbot.mouseClick(pane.empty_button, Qt.MouseButton.LeftButton)


def test_no_models_yet_offers_the_next_step(qtbot, make_pane) -> None:
    with OllamaServer(tick_s=0.002, bytes_per_tick=500_000_000) as empty:
        pane = make_pane(empty.base_url)
        assert pane.showing_empty_state
        assert pane.empty_label.text() == NO_MODELS_HINT
        assert pane.empty_button.text() == f"Pull {SUGGESTED_MODEL}"
        with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
            qtbot.mouseClick(pane.empty_button, Qt.MouseButton.LeftButton)
        assert finished.args == ["llama3.2:latest", "done"]
        qtbot.waitUntil(lambda: not pane.showing_empty_state, timeout=TIMEOUT)
        assert column(pane.installed_view) == ["llama3.2:latest"]


def test_unfinished_pulls_from_an_earlier_run_can_be_resumed(
    qtbot, server: OllamaServer, make_service, make_pane
) -> None:
    server.bytes_per_tick = 10_000
    earlier = make_service(server.base_url)
    job = run(qtbot, _start(earlier, "tiny"))
    qtbot.waitUntil(lambda: job.completed > 100_000, timeout=TIMEOUT)
    run(qtbot, earlier.aclose())  # the app quit mid-pull

    pane = make_pane(server.base_url)
    paused = pane.jobs_model.progress_of("tiny:latest")
    assert paused is not None and paused.state is PullState.CANCELLED and paused.completed > 100_000
    server.bytes_per_tick = 500_000
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(
            pane.pulls.view.viewport(), Qt.MouseButton.LeftButton, pos=job_button(pane, "tiny:latest", "resume")
        )
    assert finished.args == ["tiny:latest", "done"]


async def _start(service: OllamaService, name: str):
    return service.start_pull(name)


def test_the_app_asks_its_ollama_host_only_once_the_pane_is_opened(qtbot, modeldesk, monkeypatch):
    pane = modeldesk.ollama_pane
    calls = []
    original = pane.refresh

    async def counting_refresh():
        calls.append(1)
        await original()

    monkeypatch.setattr(pane, "refresh", counting_refresh)
    modeldesk.window.show_pane("Chat")
    modeldesk.window.show_pane("Accounts")
    assert calls == []
    modeldesk.window.show_pane("Ollama")
    qtbot.waitUntil(lambda: calls == [1], timeout=5_000)


# --- what Ollama said, truthfully -----------------------------------------------------------------


def test_a_failed_listing_is_not_an_empty_list(qtbot, server: OllamaServer, make_pane) -> None:
    server.tags_error = (500, "model list cache unavailable")
    pane = make_pane(server.base_url)
    assert pane.showing_empty_state
    sentence = f"Ollama at 127.0.0.1:{server.port} had a problem (HTTP 500) while answering. Try again in a moment."
    assert pane.empty_label.text() == sentence and NO_MODELS_HINT not in pane.empty_label.text()
    assert pane.empty_button.text() == "Try again"
    server.tags_error = None
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        qtbot.mouseClick(pane.empty_button, Qt.MouseButton.LeftButton)
    assert not pane.showing_empty_state
    assert sorted(column(pane.installed_view)) == sorted(INSTALLED)
    assert all(not r.path.startswith("/api/pull") for r in server.requests)  # Try again pulled nothing


def test_an_embedding_model_is_marked_and_kept_out_of_the_chat(qtbot, server: OllamaServer, make_service) -> None:
    pane = OllamaPane(ollama=make_service(server.base_url))
    qtbot.addWidget(pane)
    with qtbot.waitSignal(pane.installed_listed, timeout=TIMEOUT) as listed:
        run(qtbot, pane.refresh())
    assert "nomic-embed-text:latest" not in listed.args[1]
    assert sorted(listed.args[1]) == sorted(set(INSTALLED) - {"nomic-embed-text:latest"})
    uses = dict(zip(column(pane.installed_view), column(pane.installed_view, InstalledModelsModel.USE), strict=True))
    assert uses["nomic-embed-text:latest"] == "Embeddings only" and uses["gemma3:270m"] == "Chat"

    assert pane.select_installed("nomic-embed-text:latest")
    assert not pane.chat_button.isEnabled() and not pane.load_button.isEnabled()
    assert "cannot chat" in pane.chat_button.toolTip()
    assert pane.select_installed("gemma3:270m")
    assert pane.chat_button.isEnabled() and pane.load_button.isEnabled()
    run(qtbot, pane.aclose())


def test_a_pull_ollama_cannot_fetch_keeps_its_words_out_of_the_headline(
    qtbot, server: OllamaServer, pane: OllamaPane
) -> None:
    raw = (
        'pull model manifest: Get "https://registry.ollama.ai/v2/library/tiny/manifests/latest": '
        "dial tcp: lookup registry.ollama.ai: no such host"
    )
    server.registry_error = raw
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT):
        run(qtbot, pane.pull("tiny"))
    headline = pane.status_label.text()
    assert headline == (
        f"Ollama at 127.0.0.1:{server.port} could not look up registry.ollama.ai: the "
        "machine it runs on seems to be offline. Check that machine's network and DNS, "
        "then resume the pull."
    )
    tooltip = pane.jobs_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tooltip == f"{headline}\nOllama said: {raw}"
