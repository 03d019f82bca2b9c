"""The welcome's "Chat with a local model now" in the real app, against the loopback release and
Hub twins: llama.cpp installed, the starter model downloaded and started on the real llama-server,
the chat open with it picked; then the same offline. Each failure the twins can cause is one
sentence with Retry, and leaves nothing half-installed in use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.domain.engine import Platform
from desktop_app.domain.hub import HardwareInfo
from desktop_app.domain.ollama import PullState
from desktop_app.domain.starter import STARTER_MODELS, StarterPick, pick_starter
from desktop_app.lifecycle import close_first_run_offer, local_model_offer, quit_steps
from desktop_app.services.local.discovery import Discovery
from desktop_app.services.local.llamacpp_install import RELEASES_ENV
from desktop_app.ui.first_run import LocalModelOffer
from desktop_app.ui.welcome import WelcomeDialog
from tests.servers.hf_hub import HfHubTwin, _sha256
from tests.servers.llamacpp_releases import LlamaCppReleasesTwin
from tests.ui.conftest import WAIT_MS, run
from tests.unit.engine_archives import TAG
from tests.unit.hub_models import real_gguf

pytest_plugins = ("tests.unit.engine_twin",)  # `archives`: the test llama-server packed as a release asset
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

FLOW_MS = 180_000  # install, download 253 MB over loopback, start llama-server
STARTER = STARTER_MODELS[0]
ASSET = f"llama-{TAG}-bin-ubuntu-x64.tar.gz"


async def linux_x64() -> Platform:
    return Platform("linux", "x64", ())


@pytest.fixture(scope="module")
def gemma() -> tuple[Path, str]:
    path = real_gguf()
    if path is None:
        pytest.skip("the Gemma GGUF is not provisioned (run `make servers`)")
    return path, _sha256(path)


@pytest.fixture
def releases(archives, monkeypatch) -> Iterator[LlamaCppReleasesTwin]:
    server = LlamaCppReleasesTwin()
    release = server.release(TAG)
    server.add(release, ASSET, archives["real"])
    server.add(release, f"llama-{TAG}-bin-ubuntu-vulkan-x64.tar.gz", archives["real"])
    server.start()
    monkeypatch.setenv(RELEASES_ENV, server.api_url)
    yield server
    server.stop()


@pytest.fixture
def hub(gemma, monkeypatch, tmp_path) -> Iterator[HfHubTwin]:
    """The Hub twin serving the test GGUF under every starter model's name (so the flow runs
    whichever one this machine is offered), HF_HUB_CACHE in the test's folder."""
    server = HfHubTwin()
    for model in STARTER_MODELS:
        server.repo(model.repo, downloads=1000).add(model.file, *gemma)
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.base_url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no llama-server to be found there: the flow installs one
    yield server
    server.stop()


@pytest.fixture
def app(releases, hub, modeldesk):
    """The real app, built after the twins (its services read their addresses at construction)."""
    return modeldesk


def make_offer(qtbot, app, *, platform=linux_x64) -> LocalModelOffer:
    hardware = HardwareInfo(ram_total=8 * 10**9, ram_available=4 * 10**9, cpu_name="test", cpu_cores=2)
    pick = pick_starter(hardware)
    assert pick is not None and pick.model == STARTER
    offer = LocalModelOffer(
        StarterPick(STARTER, pick.verdict),
        engines=app.engines,
        hub=app.hub,
        downloads=app.hub_downloads,
        serve=lambda path, ctx: app.window.pane("llama.cpp").serve_for_chat(path, ctx=ctx),
        platform=platform,
        path="",
    )
    qtbot.addWidget(offer)
    offer.resize(640, 240)
    offer.show()
    return offer


def ends(qtbot, offer: LocalModelOffer, text: str) -> None:
    qtbot.waitUntil(lambda: not offer.running and text in offer.status.text(), timeout=FLOW_MS)
    assert offer.start_button.text() == "Retry" and offer.start_button.isEnabled()
    assert not offer.cancel_button.isVisible()


def test_the_welcome_sets_up_a_local_model_and_opens_the_chat_with_it_then_does_it_offline(
    qtbot, app, releases, hub, tmp_path
):
    offer = run(qtbot, local_model_offer(app))
    assert isinstance(offer, LocalModelOffer)
    dialog = WelcomeDialog(Discovery(), accounts=app.accounts, local_offer=offer, parent=app.window)
    dialog.open()
    assert dialog.layout().indexOf(offer) < dialog.layout().indexOf(dialog.buttons)
    assert offer.start_button.text() == "Chat with a local model now" and offer.start_button.isDefault()
    assert not dialog.add_button.isVisible() and dialog.skip_button.text() == "Not now"
    assert offer.model.description in offer.about.text() and offer.model.size_text in offer.about.text()
    assert releases.requests == [] and hub.requests == []  # nothing asked before the click

    with qtbot.waitSignal(offer.ready, timeout=FLOW_MS) as ready:
        offer.start_button.click()
        qtbot.waitUntil(lambda: not dialog.skip_button.isEnabled(), timeout=WAIT_MS)  # busy: no Skip meanwhile
    account_id, model = ready.args
    assert model == Path(offer.model.file).stem
    assert offer.engine_step.text.text() == f"llama.cpp {TAG} (CPU · linux x64) is installed and ran."
    assert offer.model_step.text.text() == f"{offer.model.file} is downloaded and checked."
    assert offer.model_step.bar.format() == "253 MB"
    assert offer.start_step.bar.format() == "Running"
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert app.accounts.env_import_offered  # the first-run offer is answered
    assert app.window.stack.currentWidget() is app.chat_pane
    assert app.chat_pane.selected_model() == (account_id, model)
    assert app.engines.current() is not None and app.engines.current().tag == TAG
    assert (tmp_path / "hf-cache" / f"models--{offer.model.repo.replace('/', '--')}").is_dir()

    # Offline: a second run finds the engine and the model on disk and asks neither twin.
    asked = len(releases.requests), len(hub.requests)
    releases.stop()
    hub.stop()
    again = make_offer(qtbot, app, platform=linux_x64)
    again.model = offer.model
    with qtbot.waitSignal(again.ready, timeout=FLOW_MS):
        again.start_button.click()
    assert again.engine_step.text.text() == f"llama.cpp {TAG} is installed already."
    assert again.model_step.text.text() == f"{offer.model.file} is downloaded already."
    assert (len(releases.requests), len(hub.requests)) == asked


def test_a_damaged_engine_download_is_one_sentence_and_retry_installs_it(qtbot, app, releases):
    releases.wrong_digest.add(ASSET)
    offer = make_offer(qtbot, app)
    offer.start_button.click()
    ends(qtbot, offer, f"“{ASSET}” arrived damaged: its SHA-256 is not the one the release publishes")
    assert app.engines.current() is None and offer.engine_step.text.text() == "No engine installed."
    assert app.llamacpp_pane.managed is None  # nothing started

    releases.wrong_digest.clear()
    with qtbot.waitSignal(offer.ready, timeout=FLOW_MS):
        offer.start_button.click()
    assert app.engines.current().tag == TAG


def test_no_build_for_this_machine_is_one_sentence(qtbot, app, releases):
    async def riscv() -> Platform:
        return Platform("linux", "riscv64", ())

    offer = make_offer(qtbot, app, platform=riscv)
    offer.start_button.click()
    ends(qtbot, offer, f"llama.cpp {TAG} has no prebuilt llama-server for linux on riscv64.")
    assert app.engines.current() is None and releases.body_bytes == 0
    assert offer.model_step.bar.format() == offer.start_step.bar.format() == ""  # nothing waits any more


def test_a_damaged_model_download_is_one_sentence_and_leaves_nothing_in_the_cache(qtbot, app, hub, tmp_path):
    hub.corrupt.add(STARTER.file)
    offer = make_offer(qtbot, app)
    offer.start_button.click()
    ends(qtbot, offer, f"“{STARTER.file}” arrived damaged: its SHA-256 is not the one Hugging Face publishes")
    assert run(qtbot, app.hub_downloads.cached(STARTER.repo, STARTER.file)) is None
    assert offer.model_step.text.text() == "Not downloaded." and app.llamacpp_pane.managed is None
    assert app.engines.current() is not None  # the step before stays done: Retry does not redo it


def test_a_cut_download_resumes_where_it_stopped(qtbot, app, hub):
    hub.cut_after = 64 * 1024 * 1024
    offer = make_offer(qtbot, app)
    with qtbot.waitSignal(offer.ready, timeout=FLOW_MS):
        offer.start_button.click()
        qtbot.waitUntil(lambda: offer.model_step.bar.format() == "Connection lost: again in 1 s", timeout=FLOW_MS)
    ranges = [r.headers.get("range", "") for r in hub.requests if r.path.startswith("/cdn/")]
    assert any(value.startswith("bytes=") and value != "bytes=0-" for value in ranges), ranges


def test_cancel_keeps_the_engine_download_for_the_next_try(qtbot, app, releases):
    releases.stall_after = 1024 * 1024
    offer = make_offer(qtbot, app)
    offer.start_button.click()
    qtbot.waitUntil(lambda: offer.engine_step.bar.value() > 0, timeout=WAIT_MS)  # the first MiB is in
    assert offer.cancel_button.isVisible() and offer.engine_step.bar.format().startswith("1 MB of ")
    offer.cancel_button.click()
    ends(qtbot, offer, "Cancelled. What was downloaded is kept")
    releases.release_stall()
    assert app.engines.current() is None
    assert app.engines.job(ASSET).state is PullState.CANCELLED
    assert (app.engines.downloads / f"{ASSET}.incomplete").stat().st_size == 1024 * 1024


def test_quitting_mid_install_stops_the_offer_and_keeps_the_download(qtbot, app, releases):
    releases.stall_after = 1024 * 1024
    offer = make_offer(qtbot, app)
    app.first_run_dialog = WelcomeDialog(Discovery(), accounts=app.accounts, local_offer=offer, parent=app.window)
    app.first_run_dialog.open()
    offer.start_button.click()
    qtbot.waitUntil(lambda: offer.engine_step.bar.value() > 0, timeout=WAIT_MS)  # the first MiB is in
    assert [name for name, _step in quit_steps(app)].index("first-run offer") < [
        name for name, _step in quit_steps(app)
    ].index("engine installs")

    run(qtbot, close_first_run_offer(app))
    releases.release_stall()
    assert not offer.running and app.engines.job(ASSET).state is PullState.CANCELLED
    assert (app.engines.downloads / f"{ASSET}.incomplete").is_file() and app.engines.current() is None
