"""The Discover pane against the loopback Hugging Face Hub twin (serving the real test GGUF):
search and sort, a repo's files with fit badges from a header read by range, a gated repo, downloads
with progress, cancel and resume (also after a restart), failures in one sentence; in the whole app,
the GGUF library listing a download at once and Run starting the real llama-server with the chat
picking the model."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView

from desktop_app.app import ModelDeskApp
from desktop_app.domain.ollama import PullState
from desktop_app.services.http_client import http_client
from desktop_app.services.local.gguf import GgufLibrary
from desktop_app.services.local.hf_downloads import HubDownloads, hub_cache_dir
from desktop_app.services.local.hf_hub import HubClient
from desktop_app.services.paths import AppPaths
from desktop_app.ui.discover import DiscoverPane
from desktop_app.ui.discover.models import QuantFilesModel, ReposModel
from desktop_app.ui.discover.pane import NO_HITS
from tests.ui.conftest import run
from tests.unit.hub_models import GATED, GEMMA, GEMMA_FILE, SMALL, SPLIT_PARTS, TOKEN
from tests.unit.sqlite_stores import small_disk

pytest_plugins = ("tests.unit.hub_twin",)  # the twin with its repos, HF_ENDPOINT pointed at it
TIMEOUT = 20_000
DOWNLOAD_MS = 120_000


@pytest.fixture(autouse=True)
def hf_home(tmp_path: Path, monkeypatch) -> Path:
    """The Hugging Face cache of this test only."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return hub_cache_dir()


@pytest.fixture
def little_gpu(tmp_path: Path, monkeypatch) -> None:
    """nvidia-smi answering as it does for a 1 GiB card (its recorded CSV), first on PATH."""
    folder = tmp_path / "gpu-tools"
    folder.mkdir()
    tool = folder / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\necho 'name, memory.total [MiB], memory.free [MiB]'\necho 'Little GPU, 1024 MiB, 1000 MiB'\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin:/bin")


@pytest.fixture
def make_pane(qtbot, qloop, tmp_path: Path, twin) -> Iterator[Callable[..., DiscoverPane]]:
    made: list[tuple[DiscoverPane, HubDownloads]] = []
    http = http_client(timeout=httpx.Timeout(30.0))

    def make(*, token: str | None = None, endpoint: str | None = None, **options) -> DiscoverPane:
        async def source() -> str | None:
            return token

        hub = HubClient(http, endpoint=endpoint, token=source)
        library = GgufLibrary(tmp_path / "gguf.json", folders=[hub_cache_dir()])
        downloads = HubDownloads(
            hub,
            http,
            ledger_file=tmp_path / "hub-downloads.json",
            library=library,
            cache_dir=hub_cache_dir(),
            **options,
        )
        pane = DiscoverPane(hub=hub, downloads=downloads)
        pane.resize(1300, 800)
        pane.show()
        qtbot.waitExposed(pane)
        made.append((pane, downloads))
        return pane

    yield make
    for pane, downloads in made:
        run(qtbot, pane.aclose())
        run(qtbot, downloads.aclose())
        pane.close()
        pane.deleteLater()
    run(qtbot, http.aclose())


def column(view: QAbstractItemView, col: int = 0) -> list[str]:
    model = view.model()
    return [model.index(row, col).data() for row in range(model.rowCount())]


def show_repo(qtbot, pane: DiscoverPane, repo_id: str) -> None:
    qtbot.waitUntil(lambda: repo_id in column(pane.repos_view), timeout=TIMEOUT)
    pane.repos_view.selectRow(column(pane.repos_view).index(repo_id))
    qtbot.waitUntil(lambda: pane.repo is not None and pane.repo.id == repo_id, timeout=TIMEOUT)
    # and its header read (or refused), so no request of the test's races it
    qtbot.waitUntil(lambda: not pane.files_status.text().startswith(("Listing", "Reading")), timeout=TIMEOUT)


def judged(pane: DiscoverPane) -> bool:
    fits = column(pane.files_view, QuantFilesModel.FIT)
    return bool(fits) and "—" not in fits


def row_text(pane: DiscoverPane, key: str) -> str:
    model = pane.downloads_model
    return model.index(model.names().index(key), 0).data(Qt.ItemDataRole.AccessibleTextRole)


def click_download_button(qtbot, pane: DiscoverPane, key: str, action: str) -> None:
    model = pane.downloads_model
    index = model.index(model.names().index(key), 0)
    progress = model.progress_of(key)
    assert progress is not None
    point: QPoint = pane.download_delegate.button_rects(pane.downloads_view.visualRect(index), progress)[
        action
    ].center()
    qtbot.mouseClick(pane.downloads_view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def state_of(pane: DiscoverPane, key: str) -> PullState | None:
    progress = pane.downloads_model.progress_of(key)
    return progress.state if progress is not None else None


# --- search and files ----------------------------------------------------------------------------


def test_search_lists_gguf_repos_in_the_order_asked(qtbot, make_pane, twin, gemma) -> None:
    pane = make_pane()
    run(qtbot, pane.start())  # opening the pane: the most downloaded GGUF repos
    assert column(pane.repos_view) == [GEMMA, SMALL, GATED]
    small = [pane.repos_model.index(1, c).data() for c in range(pane.repos_model.columnCount())]
    assert small == [SMALL, "10", "50", "mit", "2025-03-01", ""]
    assert pane.repos_model.index(2, ReposModel.ACCESS).data() == "Gated"
    assert "token" in pane.repos_model.index(2, ReposModel.ACCESS).data(Qt.ItemDataRole.ToolTipRole)

    pane.sort_combo.setCurrentIndex(pane.sort_combo.findText("Most liked"))
    qtbot.waitUntil(lambda: column(pane.repos_view) == [SMALL, GEMMA, GATED], timeout=TIMEOUT)
    twin.repos[GATED].last_modified = "2025-06-01T00:00:00.000Z"  # updated last
    pane.sort_combo.setCurrentIndex(pane.sort_combo.findText("Recently updated"))
    qtbot.waitUntil(lambda: column(pane.repos_view) == [GATED, SMALL, GEMMA], timeout=TIMEOUT)

    qtbot.keyClicks(pane.search_edit, "gemma")
    qtbot.keyClick(pane.search_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: column(pane.repos_view) == [GEMMA], timeout=TIMEOUT)
    pane.search_edit.setText("no-such-model")
    pane.search_button.click()
    qtbot.waitUntil(lambda: pane.search_status.text() == NO_HITS.format(query="no-such-model"), timeout=TIMEOUT)
    assert pane.repos_model.rowCount() == 0


def test_a_repos_files_with_fit_badges_from_its_header_read_by_range(qtbot, make_pane, twin, gemma, little_gpu) -> None:
    pane = make_pane()
    run(qtbot, pane.start())
    assert pane.gpu_label.text() == "Little GPU: 1.1 GB VRAM, 1.0 GB free"  # what detect_hardware found
    assert pane.ram_label.text().endswith("free") and "cores" in pane.cpu_label.text()

    show_repo(qtbot, pane, SMALL)
    qtbot.waitUntil(lambda: judged(pane), timeout=TIMEOUT)
    files = column(pane.files_view, QuantFilesModel.FILE)
    assert f"{SPLIT_PARTS[0]} (2 parts)" in files and len(files) == 3  # the split file is one model
    assert sorted(column(pane.files_view, QuantFilesModel.QUANTISATION)) == ["Q2_K", "Q4_K_M", "Q8_0"]
    assert column(pane.files_view, QuantFilesModel.FIT) == ["Fits on the GPU"] * 3
    memory = column(pane.files_view, QuantFilesModel.MEMORY)
    assert all(text.endswith("GB of 1.0 GB VRAM") for text in memory), memory
    tip = pane.files_model.index(0, QuantFilesModel.FIT).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Fits on the GPU: ") and "KV cache" in tip

    # A longer context: the KV cache (2 KiB a token here) no longer fits the GPU; the choice stays.
    pane.files_view.selectRow(1)
    pane.context_spin.setValue(1_000_000)
    assert column(pane.files_view, QuantFilesModel.FIT) == ["Runs on CPU"] * 3
    assert pane.files_view.selectionModel().selectedRows()[0].row() == 1

    # The header is read by a range request: a few MB of the 250 MB Gemma file, never its weights.
    sent_before = twin.body_bytes
    show_repo(qtbot, pane, GEMMA)
    qtbot.waitUntil(lambda: judged(pane), timeout=TIMEOUT)
    ranges = [r.headers.get("range", "") for r in twin.requests if r.path.startswith("/cdn/")]
    assert ranges and all(r.startswith("bytes=0-") for r in ranges)
    assert twin.body_bytes - sent_before < 16 * 1024 * 1024 < gemma[0].stat().st_size


def test_a_gated_repo_says_to_add_a_token_and_its_download_fails_in_one_sentence(qtbot, make_pane, twin) -> None:
    pane = make_pane()
    run(qtbot, pane.start())
    show_repo(qtbot, pane, GATED)
    assert "gated" in pane.repo_title.text() and "Hugging Face token in Accounts" in pane.repo_title.text()
    qtbot.waitUntil(lambda: "gated" in pane.files_status.text(), timeout=TIMEOUT)
    assert "Add a Hugging Face account with a token (Accounts)" in pane.files_status.text()
    pane.download_button.click()
    key = f"{GATED}/small-Q8_0.gguf"
    qtbot.waitUntil(lambda: state_of(pane, key) is PullState.FAILED, timeout=TIMEOUT)
    said = pane.download_status.text()
    assert said.startswith("“small-Q8_0.gguf” in “tester/gated-GGUF” is gated") and "(Accounts)" in said
    assert said.count(".") <= 3 and "Failed" in row_text(pane, key)

    with_token = make_pane(token=TOKEN)  # a token granted access: the header is read, verdicts shown
    run(qtbot, with_token.start())
    show_repo(qtbot, with_token, GATED)
    qtbot.waitUntil(lambda: judged(with_token), timeout=TIMEOUT)


# --- downloads -----------------------------------------------------------------------------------


def test_cancel_keeps_the_bytes_and_resume_continues(qtbot, make_pane, twin, gemma) -> None:
    pane = make_pane()
    run(qtbot, pane.start())
    show_repo(qtbot, pane, GEMMA)
    key = f"{GEMMA}/{GEMMA_FILE}"
    started = []
    pane.downloads_model.dataChanged.connect(
        lambda *_: started.append(1) if (p := pane.downloads_model.progress_of(key)) and p.completed else None
    )
    pane.download_button.click()
    qtbot.waitUntil(lambda: bool(started), timeout=TIMEOUT)
    click_download_button(qtbot, pane, key, "cancel")
    qtbot.waitUntil(lambda: state_of(pane, key) is PullState.CANCELLED, timeout=TIMEOUT)
    kept = pane.downloads_model.progress_of(key).completed
    assert 0 < kept < gemma[0].stat().st_size
    assert "Paused" in row_text(pane, key) and "kept on disk; Resume continues from there" in row_text(pane, key)

    click_download_button(qtbot, pane, key, "resume")
    qtbot.waitUntil(lambda: state_of(pane, key) is PullState.DONE, timeout=DOWNLOAD_MS)
    resumed = [r.headers.get("range") for r in twin.requests if r.path.startswith("/cdn/")][-1]
    assert resumed is not None and int(resumed.removeprefix("bytes=").rstrip("-")) >= kept
    qtbot.waitUntil(lambda: pane.files_model.index(0, QuantFilesModel.LOCAL).data() == "Downloaded", timeout=TIMEOUT)
    assert pane.run_button.isEnabled() is False  # no engine given to this pane: Run has nothing to call


def test_a_download_cut_off_last_time_is_paused_with_its_bytes_and_resumes(qtbot, make_pane, twin) -> None:
    first = make_pane(retry_delays=())
    run(qtbot, first.start())
    show_repo(qtbot, first, SMALL)
    first.files_view.selectRow(column(first.files_view).index("small-Q8_0.gguf"))
    key = f"{SMALL}/small-Q8_0.gguf"
    twin.cut_after = 1_000_000
    first.download_button.click()
    qtbot.waitUntil(lambda: state_of(first, key) is PullState.FAILED, timeout=TIMEOUT)
    assert first.download_status.text().endswith("Check the connection and try again.")  # one sentence, what to do

    again = make_pane()  # the next start of the app: same ledger, same cache
    run(qtbot, again.start())
    assert again.downloads_model.names() == [key] and state_of(again, key) is PullState.CANCELLED
    assert again.downloads_model.progress_of(key).completed == 1_000_000
    assert "1.0 MB of" in row_text(again, key)
    click_download_button(qtbot, again, key, "resume")
    qtbot.waitUntil(lambda: state_of(again, key) is PullState.DONE, timeout=TIMEOUT)
    assert [r.headers.get("range") for r in twin.requests if r.path.startswith("/cdn/")][-1] == "bytes=1000000-"


def test_failures_are_one_sentence_offline_and_disk_full(qtbot, make_pane, twin, hf_home) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    offline = make_pane(endpoint=f"http://127.0.0.1:{port}")
    run(qtbot, offline.start())
    assert offline.search_status.text() == "127.0.0.1 could not be reached. Check the connection and try again."

    with small_disk(hf_home, size_kib=1024):
        pane = make_pane()
        run(qtbot, pane.start())
        show_repo(qtbot, pane, SMALL)
        pane.files_view.selectRow(column(pane.files_view).index("small-Q8_0.gguf"))
        pane.download_button.click()
        key = f"{SMALL}/small-Q8_0.gguf"
        qtbot.waitUntil(lambda: state_of(pane, key) is PullState.FAILED, timeout=TIMEOUT)
        assert pane.download_status.text().startswith("Not enough disk space for “small-Q8_0.gguf”: it needs")
        assert pane.download_status.text().endswith("Free some space, or download into another folder.")


def test_several_downloads_at_once(qtbot, make_pane, twin) -> None:
    pane = make_pane()
    run(qtbot, pane.start())
    show_repo(qtbot, pane, SMALL)
    for name in ("small-Q8_0.gguf", "small-Q4_K_M.gguf", SPLIT_PARTS[0]):
        pane.files_view.selectRow(
            column(pane.files_view).index(name + (" (2 parts)" if name == SPLIT_PARTS[0] else ""))
        )
        pane.download_button.click()
    keys = pane.downloads_model.names()
    assert len(keys) == 3
    qtbot.waitUntil(lambda: all(state_of(pane, k) is PullState.DONE for k in keys), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: column(pane.files_view, QuantFilesModel.LOCAL) == ["Downloaded"] * 3, timeout=TIMEOUT)


# --- in the whole app: the GGUF library, and Run ------------------------------------------------------


@pytest.fixture
def app(qtbot, qloop, twin, hf_home) -> Iterator[ModelDeskApp]:
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    yield app
    run(qtbot, app.aclose(), timeout=60_000)
    app.window.close()
    app.window.deleteLater()


def download_gemma(qtbot, app: ModelDeskApp) -> tuple[DiscoverPane, list[str]]:
    app.window.show_pane("Discover")
    pane = app.discover_pane
    show_repo(qtbot, pane, GEMMA)
    key = f"{GEMMA}/{GEMMA_FILE}"
    seen: list[str] = []
    pane.downloads_model.dataChanged.connect(lambda *_: seen.append(row_text(pane, key)))
    pane.download_button.click()
    qtbot.waitUntil(lambda: state_of(pane, key) is PullState.DONE, timeout=DOWNLOAD_MS)
    qtbot.waitUntil(pane.run_button.isEnabled, timeout=TIMEOUT)  # the file is in place
    return pane, seen


def test_a_download_shows_progress_and_the_gguf_library_lists_it_at_once(qtbot, app, gemma, hf_home) -> None:
    pane, seen = download_gemma(qtbot, app)
    under_way = [text for text in seen if "Downloading" in text and "/s" in text and "left" in text]
    assert under_way, seen  # progress, speed and time left while it ran
    snapshot = hf_home / f"models--{GEMMA.replace('/', '--')}" / "snapshots" / twin_sha(app) / GEMMA_FILE
    qtbot.waitUntil(lambda: snapshot in app.gguf_view.files, timeout=TIMEOUT)
    assert "Downloaded" in row_text(pane, f"{GEMMA}/{GEMMA_FILE}")
    assert pane.run_button.isEnabled()


def twin_sha(app: ModelDeskApp) -> str:
    repo = app.discover_pane.repo
    assert repo is not None
    return repo.sha


def test_run_starts_the_real_llama_server_and_the_chat_picks_the_model(qtbot, app, gemma) -> None:
    from tests.servers.llama import real_artifacts

    binary, _model = real_artifacts()
    pane, _seen = download_gemma(qtbot, app)
    llama = app.llamacpp_pane  # what the user set in the llama.cpp pane is what Run uses
    llama.form.binary_edit.setText(str(binary))
    llama.form.ctx_spin.setValue(2048)
    llama.form.threads_spin.setValue(2)
    llama.form.extra_args_edit.setText("--no-jinja --chat-template gemma")
    app.window.show_pane("Discover")
    pane.run_button.click()
    qtbot.waitUntil(lambda: app.window.stack.currentWidget() is app.chat_pane, timeout=90_000)
    qtbot.waitUntil(lambda: pane.run_status.text().endswith("the chat has it picked."), timeout=TIMEOUT)
    selected = app.chat_pane.selected_model()
    assert selected is not None and selected[1] == Path(GEMMA_FILE).stem
    account = next(a for a in app.accounts.accounts if a.id == selected[0])
    assert llama.managed is not None and account.base_url == f"{llama.managed.url}/v1"
    assert llama.managed.spec.model is not None and llama.managed.spec.model.name == GEMMA_FILE


def test_run_loads_the_file_into_the_router_the_llama_pane_shows(qtbot, app, gemma) -> None:
    from desktop_app.domain.llamacpp import RouterModelStatus
    from tests.servers.llama import real_artifacts

    binary, _model = real_artifacts()
    pane, _seen = download_gemma(qtbot, app)
    qtbot.waitUntil(lambda: any(path.name == GEMMA_FILE for path in app.gguf_view.files), timeout=TIMEOUT)
    llama = app.llamacpp_pane
    llama.form.binary_edit.setText(str(binary))
    llama.form.ctx_spin.setValue(2048)
    llama.form.threads_spin.setValue(2)
    llama.form.extra_args_edit.setText("--no-jinja --chat-template gemma")
    assert run(qtbot, llama.start_router_over_library(), timeout=60_000) is not None
    router = llama.router_url
    model_id = Path(GEMMA_FILE).stem
    assert router and llama.router_model.row_of(model_id) >= 0

    app.window.show_pane("Discover")
    click_download_button(qtbot, pane, f"{GEMMA}/{GEMMA_FILE}", "run")  # the finished download's Run
    qtbot.waitUntil(lambda: app.window.stack.currentWidget() is app.chat_pane, timeout=90_000)
    selected = app.chat_pane.selected_model()
    assert selected is not None and selected[1] == model_id
    assert next(a for a in app.accounts.accounts if a.id == selected[0]).base_url == f"{router}/v1"
    assert llama.router_url == router and llama.managed is not None and llama.managed.spec.router  # not replaced
    loaded = llama.router_model.model_at(llama.router_model.row_of(model_id))
    assert loaded is not None and loaded.status is RouterModelStatus.LOADED


def test_the_discover_models_answer_qt_as_models_should(qtbot, make_pane, twin, qtmodeltester) -> None:
    pane = make_pane()
    run(qtbot, pane.start())
    show_repo(qtbot, pane, SMALL)
    qtbot.waitUntil(lambda: judged(pane), timeout=TIMEOUT)
    pane.download_selected()
    for model in (pane.repos_model, pane.files_model, pane.downloads_model):
        qtmodeltester.check(model, force_py=True)


def test_run_that_cannot_start_says_why_and_stays(qtbot, app, tmp_path) -> None:
    app.window.show_pane("Discover")
    pane = app.discover_pane
    show_repo(qtbot, pane, SMALL)
    pane.files_view.selectRow(column(pane.files_view).index("small-Q8_0.gguf"))
    pane.download_button.click()
    qtbot.waitUntil(pane.run_button.isEnabled, timeout=TIMEOUT)
    llama = app.llamacpp_pane
    llama.form.binary_edit.setText(str(tmp_path / "no-such-llama-server"))
    app.window.show_pane("Discover")
    pane.run_button.click()
    qtbot.waitUntil(
        lambda: pane.run_status.text() not in ("", "Starting small-Q8_0.gguf on the local engine…"), timeout=TIMEOUT
    )
    said = pane.run_status.text()
    assert said == llama.form.start_status.text() and said.startswith("llama-server was not found"), said
    assert app.window.stack.currentWidget() is pane and llama.managed is not None and not llama.managed.state.alive


def test_a_download_started_before_discover_is_first_shown_is_listed(qtbot, app) -> None:
    from desktop_app.services.local.hf_downloads import DownloadRequest

    repo = run(qtbot, app.hub.repo(SMALL))
    quant = next(q for q in run(qtbot, app.hub.quant_files(SMALL, repo.sha)) if q.name == "small-Q8_0.gguf")
    job = app.hub_downloads.start(DownloadRequest(SMALL, quant, repo.sha))  # as the first-run offer does
    run(qtbot, job.wait())
    assert app.panes.built("Discover") is None
    app.window.show_pane("Discover")
    pane = app.discover_pane
    qtbot.waitUntil(lambda: state_of(pane, f"{SMALL}/small-Q8_0.gguf") is PullState.DONE, timeout=TIMEOUT)
