"""The llama.cpp pane's "Local engine" box against the loopback release release_twin: nothing in use, then
Install llama.cpp… lists the builds for this machine, Install downloads and runs the real
llama-server, and the box says which one is in use; a damaged download is one sentence."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from desktop_app.domain.engine import Platform
from desktop_app.services.local.llamacpp_build import build_tools
from desktop_app.services.local.llamacpp_install import EngineInstaller
from desktop_app.ui.llamacpp.engine_box import NO_ENGINE, EngineBox
from tests.servers.llama import real_artifacts
from tests.ui.conftest import WAIT_MS, run
from tests.unit.engine_archives import CMAKE_LISTS, SERVER_CPP, TAG, tar_archive

pytest_plugins = ("tests.unit.engine_twin",)


async def linux_x64() -> Platform:
    return Platform("linux", "x64", ())


@pytest.fixture
def box(qtbot, qloop, release_twin, tmp_path) -> Iterator[EngineBox]:
    http = httpx.AsyncClient(timeout=30.0)
    engines = EngineInstaller(http, tmp_path / "data", reserve_bytes=0, publish_interval=0.0)
    widget = EngineBox(engines=engines, platform=linux_x64, path="")
    qtbot.addWidget(widget)
    widget.resize(640, 200)
    widget.show()
    yield widget
    run(qtbot, widget.aclose())
    run(qtbot, engines.aclose())
    run(qtbot, http.aclose())


def test_install_from_nothing_to_an_engine_in_use(qtbot, box, release_twin):
    assert run(qtbot, box.refresh()) is None
    assert release_twin.requests == []  # saying what is in use asks no network
    assert box.engine_label.text() == NO_ENGINE and box.check_button.text() == "Install llama.cpp…"
    box.check_button.click()
    qtbot.waitUntil(box.install_button.isVisible, timeout=WAIT_MS)
    assert box.builds_combo.itemText(0).startswith("CPU · linux x64, ") and "recommended" in box.builds_combo.itemText(
        0
    )
    assert box.builds_combo.count() == 2  # the Vulkan build, for the user to choose
    box.install_button.click()
    qtbot.waitUntil(lambda: box.in_use is not None, timeout=60_000)
    assert box.status.text() == f"llama.cpp {TAG} is installed and ran."
    assert box.engine_label.text().startswith(f"llama-server {TAG} (installed by ModelDesk): version ")
    assert not box.install_button.isVisible() and not box.progress.isVisible()
    assert box.check_button.text() == "Check for updates"
    box.check_button.click()
    qtbot.waitUntil(lambda: box.status.text() == f"llama.cpp {TAG} is the latest release.", timeout=WAIT_MS)


def test_a_damaged_download_is_one_sentence(qtbot, box, release_twin):
    release_twin.wrong_digest.add(f"llama-{TAG}-bin-ubuntu-x64.tar.gz")
    run(qtbot, box.check())
    box.install_button.click()
    qtbot.waitUntil(lambda: "arrived damaged" in box.status.text(), timeout=60_000)
    assert box.in_use is None and box.install_button.isEnabled() and not box.cancel_button.isVisible()


@pytest.mark.skipif(build_tools() is None, reason="cmake and a C++ compiler are needed")
def test_no_build_for_this_machine_offers_a_build_from_source(qtbot, release_twin, tmp_path, qloop):
    release_twin.releases[0].source = tar_archive(
        tmp_path / "src.tar.gz", "ggml-org-llama.cpp-abc1234", {"CMakeLists.txt": CMAKE_LISTS, "server.cpp": SERVER_CPP}
    )
    http = httpx.AsyncClient(timeout=30.0)
    engines = EngineInstaller(http, tmp_path / "data", reserve_bytes=0, publish_interval=0.0)

    async def riscv() -> Platform:
        return Platform("linux", "riscv64", ())

    box = EngineBox(engines=engines, platform=riscv, path=None)
    qtbot.addWidget(box)
    box.show()
    try:
        assert run(qtbot, box.check()) is None
        assert box.status.text() == (
            f"llama.cpp {TAG} has no prebuilt llama-server for linux on riscv64. It can be built from source here."
        )
        assert box.build_button.isVisible() and not box.install_button.isVisible()
        box.build_button.click()
        qtbot.waitUntil(lambda: box.build_log.isVisible() and box.build_log.toPlainText().startswith("$ "))
        qtbot.waitUntil(lambda: box.in_use is not None, timeout=120_000)
        assert box.status.text() == f"llama.cpp {TAG} is built, installed and ran."
        assert "--target llama-server" in box.build_log.toPlainText()
        assert engines.current() is not None and engines.current().backend == "source"  # type: ignore[union-attr]
    finally:
        run(qtbot, box.aclose())
        run(qtbot, http.aclose())


def test_the_app_pane_shows_the_engine_in_use_without_asking_the_network(qtbot, release_twin, modeldesk):
    binary = real_artifacts()[0]
    run(qtbot, modeldesk.settings.update(llama_server_binary=str(binary)))
    modeldesk.window.show_pane("llama.cpp")
    box = modeldesk.llamacpp_pane.engine_box
    assert box is not None
    qtbot.waitUntil(lambda: box.in_use is not None, timeout=WAIT_MS)
    assert box.engine_label.text().startswith("llama-server (the path set below): version ")
    assert box.check_button.text() == "Install llama.cpp…"
    assert release_twin.requests == []  # nothing goes to the release list until the user clicks
