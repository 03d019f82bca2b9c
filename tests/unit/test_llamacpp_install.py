"""EngineInstaller against the loopback release_twin of GitHub's release API, serving archives made from
the real llama-server that `make test` builds: the install ends by running that binary's
`--version`. Faults: a wrong digest, a cut then a resume, a full disk, no build for this
platform, an archive without the binary; after each, one sentence and nothing half-installed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.engine import (
    BrokenEngine,
    EngineDigestMismatch,
    EngineDiskFull,
    EngineError,
    NoBuildForPlatform,
    Platform,
    Release,
    ReleaseAsset,
    parse_asset,
    parse_version,
    pick_build,
)
from desktop_app.domain.llamacpp import BinaryNotFound, ManagedServerSpec, ManagedStatus
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.http_client import http_client
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_install import (
    EngineInstaller,
    detect_platform,
    releases_url,
    this_platform_base,
)
from desktop_app.services.local.llamacpp_managed import find_binary
from tests.servers.llama import real_artifacts
from tests.unit.engine_archives import NEWER, TAG, tar_archive
from tests.unit.sqlite_stores import file_size_limit, small_disk

LINUX = Platform("linux", "x64", ())
pytest_plugins = ("tests.unit.engine_twin",)  # the release release_twin and its archives


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout=30.0) as client:
        yield client


def installer(client, tmp_path) -> tuple[EngineInstaller, list[PullProgress]]:
    engines = EngineInstaller(client, tmp_path / "data", reserve_bytes=0, publish_interval=0.0)
    seen: list[PullProgress] = []
    engines.add_listener(seen.append)
    return engines, seen


def leftovers(engines: EngineInstaller) -> list[str]:
    """Staging folders and half-done files: what a failure must not leave in the way."""
    if not engines.root.exists():
        return []
    hidden = [p.name for p in engines.root.iterdir() if p.name.startswith(".")]
    return hidden + [p.name for p in engines.downloads.glob("*")] if engines.downloads.exists() else hidden


async def install(engines: EngineInstaller, platform: Platform = LINUX) -> tuple[PullProgress, str]:
    release = await engines.latest()
    build, _ = pick_build(release, platform)
    return await engines.start(build, release.tag).wait(), build.asset.name


@pytest.mark.asyncio
async def test_installs_the_build_for_this_machine_and_runs_it(release_twin, client, tmp_path):
    engines, seen = installer(client, tmp_path)
    assert engines.releases_url == releases_url() == release_twin.api_url
    assert await engines.in_use(path="") is None  # nothing configured, on PATH or installed: offer Install
    final, name = await install(engines)
    assert final.state is PullState.DONE, final.error
    assert name == f"llama-{TAG}-bin-ubuntu-x64.tar.gz"
    size = release_twin.releases[0].assets[0].size
    assert seen[-1].done and max(p.total for p in seen) == size
    [engine] = engines.installed()
    assert engine.folder == tmp_path / "data" / "llama.cpp" / TAG
    assert engine.binary == engine.folder / f"llama-{TAG}" / "llama-server"
    assert engine.version is not None and engine.version.version  # what the real --version said
    in_use = await engines.in_use(path="")
    assert in_use is not None and in_use.source == "installed" and in_use.tag == TAG
    assert in_use.version == engine.version
    assert leftovers(engines) == []  # the archive is gone once installed
    # the redirect of browser_download_url was followed to the storage host
    assert [r.path for r in release_twin.requests if "/objects/" in r.path or "/download/" in r.path][-2:] == [
        f"/ggml-org/llama.cpp/releases/download/{TAG}/{name}",
        f"/objects/{release_twin.releases[0].assets[0].id}",
    ]


@pytest.mark.asyncio
async def test_a_configured_path_comes_before_an_install(release_twin, client, tmp_path):
    engines, _ = installer(client, tmp_path)
    binary = real_artifacts()[0]
    in_use = await engines.in_use(str(binary), path="")
    assert in_use is not None and in_use.source == "setting" and in_use.version is not None
    on_path = await engines.in_use(path=str(binary.parent))
    assert on_path is not None and on_path.source == "path"


def test_the_build_is_picked_for_the_os_cpu_and_gpu():
    names = [
        "llama-b1-bin-ubuntu-x64.tar.gz",
        "llama-b1-bin-ubuntu-vulkan-x64.tar.gz",
        "llama-b1-bin-ubuntu-arm64.tar.gz",
        "llama-b1-bin-macos-arm64.tar.gz",
        "llama-b1-bin-macos-x64.tar.gz",
        "llama-b1-bin-win-cpu-x64.zip",
        "llama-b1-bin-win-cuda-12.4-x64.zip",
        "llama-b1-bin-win-cuda-13.1-x64.zip",
        "llama-b1-bin-win-vulkan-x64.zip",
        "llama-b1-bin-win-hip-radeon-x64.zip",
        "cudart-llama-bin-win-cuda-12.4-x64.zip",
        "cudart-llama-bin-win-cuda-13.1-x64.zip",
        "llama-b1-xcframework.zip",
    ]
    release = Release("b1", tuple(ReleaseAsset(n, 1, f"http://x/{n}") for n in names))
    assert parse_asset(release.assets[-1]) is None and parse_asset(release.assets[-2]) is None
    cuda = pick_build(release, Platform("windows", "x64", ("nvidia",)))[0]
    assert cuda.runtime is not None and cuda.runtime.name == "cudart-llama-bin-win-cuda-13.1-x64.zip"
    assert cuda.size == 2 and cuda.label == "CUDA 13.1 · windows x64 with its CUDA runtime"

    def picked(platform: Platform) -> tuple[str, list[str]]:
        build, others = pick_build(release, platform)
        return build.asset.name, [b.asset.name for b in others]

    assert picked(LINUX) == ("llama-b1-bin-ubuntu-x64.tar.gz", ["llama-b1-bin-ubuntu-vulkan-x64.tar.gz"])
    assert picked(Platform("linux", "x64", ("amd",)))[0] == "llama-b1-bin-ubuntu-vulkan-x64.tar.gz"
    assert picked(Platform("linux", "arm64"))[0] == "llama-b1-bin-ubuntu-arm64.tar.gz"
    assert picked(Platform("macos", "arm64"))[0] == "llama-b1-bin-macos-arm64.tar.gz"
    assert pick_build(release, Platform("macos", "arm64"))[0].backend == "metal"
    best, others = picked(Platform("windows", "x64", ("nvidia",)))
    assert best == "llama-b1-bin-win-cuda-13.1-x64.zip"
    assert others[:3] == [
        "llama-b1-bin-win-cuda-12.4-x64.zip",
        "llama-b1-bin-win-vulkan-x64.zip",
        "llama-b1-bin-win-cpu-x64.zip",
    ]
    assert picked(Platform("windows", "x64"))[0] == "llama-b1-bin-win-cpu-x64.zip"
    with pytest.raises(NoBuildForPlatform, match="no prebuilt llama-server for linux on riscv64"):
        pick_build(release, Platform("linux", "riscv64"))


def test_version_lines_are_read():
    release_build = parse_version("version: 6123 (abc1234)\nbuilt with cc (GCC) 12.2.0 for x86_64-linux-gnu\n")
    assert release_build is not None and (release_build.version, release_build.commit) == ("6123", "abc1234")
    assert release_build.text == "build 6123 (abc1234), cc (GCC) 12.2.0 for x86_64-linux-gnu"
    assert parse_version("load_backend: loaded CPU\nnothing else") is None


@pytest.mark.asyncio
async def test_no_asset_for_this_platform_is_one_sentence(release_twin, client, tmp_path):
    engines, _ = installer(client, tmp_path)
    with pytest.raises(NoBuildForPlatform) as refused:
        await install(engines, Platform("linux", "riscv64"))
    assert str(refused.value).endswith("on riscv64.")
    assert engines.installed() == [] and leftovers(engines) == []


@pytest.mark.asyncio
async def test_a_wrong_digest_deletes_the_download_and_installs_nothing(release_twin, client, tmp_path):
    release_twin.wrong_digest.add(f"llama-{TAG}-bin-ubuntu-x64.tar.gz")
    engines, _ = installer(client, tmp_path)
    final, _ = await install(engines)
    assert final.state is PullState.FAILED and isinstance(final.error, EngineDigestMismatch)
    assert "arrived damaged" in final.error.message
    assert engines.installed() == [] and leftovers(engines) == []


@pytest.mark.asyncio
async def test_a_cut_download_resumes_where_it_stopped(release_twin, client, tmp_path):
    size = release_twin.releases[0].assets[0].size
    release_twin.cut_after = size // 2
    engines, _ = installer(client, tmp_path)
    final, name = await install(engines)
    assert final.state is PullState.FAILED and type(final.error) is EngineError
    assert final.error.message == f"The download of “{name}” was cut off."
    assert engines.installed() == []
    assert (engines.downloads / f"{name}.incomplete").stat().st_size == size // 2  # kept, to resume
    assert [p for p in leftovers(engines) if p.startswith(".")] == []
    final, _ = await install(engines)
    assert final.state is PullState.DONE, final.error
    last = [r for r in release_twin.requests if r.path.startswith("/objects/")][-1]
    assert last.headers["range"] == f"bytes={size // 2}-"
    assert release_twin.body_bytes == size  # no byte fetched twice
    assert engines.current() is not None and leftovers(engines) == []


@pytest.mark.asyncio
async def test_a_disk_that_fills_up_mid_download_is_one_sentence(release_twin, client, tmp_path):
    size = release_twin.releases[0].assets[0].size
    engines, _ = installer(client, tmp_path)
    with file_size_limit(size // 2):
        final, _ = await install(engines)
    assert final.state is PullState.FAILED and isinstance(final.error, EngineDiskFull)
    assert final.error.message == "The disk filled up while downloading “llama-b9000-bin-ubuntu-x64.tar.gz”."
    assert engines.installed() == []
    assert [p for p in leftovers(engines) if p.startswith(".")] == []


@pytest.mark.asyncio
async def test_a_disk_too_small_is_refused_before_downloading(release_twin, client, tmp_path):
    with small_disk(tmp_path / "data", size_kib=1024):
        engines, _ = installer(client, tmp_path)
        final, _ = await install(engines)
        assert final.state is PullState.FAILED and isinstance(final.error, EngineDiskFull)
        assert final.error.message.startswith("Not enough disk space to install llama.cpp: it needs ")
        assert not [r for r in release_twin.requests if r.path.startswith("/objects/")]
        assert engines.installed() == []


@pytest.mark.asyncio
async def test_an_archive_without_the_binary_keeps_the_old_install_in_use(release_twin, client, tmp_path, archives):
    engines, _ = installer(client, tmp_path)
    assert (await install(engines))[0].state is PullState.DONE
    assert await engines.update_available() is None
    newer = release_twin.release(NEWER)
    release_twin.add(newer, f"llama-{NEWER}-bin-ubuntu-x64.tar.gz", archives["empty"])
    update = await engines.update_available()
    assert update is not None and update.tag == NEWER
    final, _ = await install(engines)
    assert final.state is PullState.FAILED and isinstance(final.error, BrokenEngine)
    assert final.error.message == f"“llama-{NEWER}-bin-ubuntu-x64.tar.gz” holds no llama-server."
    assert [e.tag for e in engines.installed()] == [TAG]  # the old one is still the one in use
    assert [p for p in leftovers(engines) if p.startswith(".")] == []


@pytest.mark.asyncio
async def test_an_update_installs_beside_the_old_one_which_goes_once_asked(release_twin, client, tmp_path, archives):
    engines, _ = installer(client, tmp_path)
    assert (await install(engines))[0].state is PullState.DONE
    newer = release_twin.release(NEWER)
    release_twin.add(newer, f"llama-{NEWER}-bin-ubuntu-x64.zip", archives["zip"])  # a zip unpacks as well
    final, _ = await install(engines)
    assert final.state is PullState.DONE, final.error
    assert [e.tag for e in engines.installed()] == [NEWER, TAG]
    assert engines.current() is not None and engines.current().binary.name == "llama-server"  # type: ignore[union-attr]
    assert await engines.prune(keep=NEWER) == [TAG]
    assert [e.tag for e in engines.installed()] == [NEWER]


@pytest.mark.asyncio
async def test_an_update_replaces_the_old_install_once_it_has_served_a_model(
    release_twin, client, tmp_path, archives, monkeypatch
):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no llama-server there: the app runs the one it installed
    engines, _ = installer(client, tmp_path)
    assert (await install(engines))[0].state is PullState.DONE
    old = engines.current()
    assert old is not None
    release_twin.add(release_twin.release(NEWER), f"llama-{NEWER}-bin-ubuntu-x64.zip", archives["zip"])
    assert (await install(engines))[0].state is PullState.DONE
    assert [e.tag for e in engines.installed()] == [NEWER, TAG]  # --version ran; serving has not yet
    assert await engines.served(old.binary) == []  # the old one serving removes nothing

    service = LlamaCppService(
        client, installed_binary=lambda: engine.binary if (engine := engines.current()) else None, served=engines.served
    )
    server = service.managed(ManagedServerSpec(model=real_artifacts()[1], ctx=512))
    try:
        assert (await server.start()).status is ManagedStatus.RUNNING
    finally:
        await server.stop()
    assert [e.tag for e in engines.installed()] == [NEWER] and not old.folder.exists()


@pytest.mark.asyncio
async def test_a_binary_that_does_not_run_is_not_put_in_place(release_twin, client, tmp_path):
    broken = tar_archive(
        tmp_path / "broken.tar.gz",
        f"llama-{NEWER}",
        {"llama-server": b"#!/bin/sh\necho 'error while loading shared libraries: libcuda.so.1' >&2\nexit 127\n"},
    )
    newer = release_twin.release(NEWER)
    release_twin.add(newer, f"llama-{NEWER}-bin-ubuntu-x64.tar.gz", broken)
    engines, _ = installer(client, tmp_path)
    final, _ = await install(engines)
    assert final.state is PullState.FAILED and isinstance(final.error, BrokenEngine)
    assert final.error.message == "llama-server --version failed (error while loading shared libraries: libcuda.so.1)."
    assert engines.installed() == [] and not (engines.root / NEWER).exists()
    assert [p for p in leftovers(engines) if p.startswith(".")] == []


@pytest.mark.asyncio
async def test_the_app_runs_the_installed_engine_when_none_is_configured_or_on_path(release_twin, client, tmp_path):
    engines, _ = installer(client, tmp_path)
    assert (await install(engines))[0].state is PullState.DONE
    current = engines.current()
    assert current is not None
    assert find_binary("", path="", installed=current.binary) == current.binary
    on_path = real_artifacts()[0]
    assert find_binary("", path=str(on_path.parent), installed=current.binary) == on_path
    with pytest.raises(BinaryNotFound):
        find_binary("", path="", installed=None)


@pytest.mark.asyncio
async def test_cancel_keeps_what_arrived_and_the_next_install_resumes(release_twin, client, tmp_path):
    size = release_twin.releases[0].assets[0].size
    release_twin.stall_after = 3 * 1024 * 1024
    engines, seen = installer(client, tmp_path)
    arrived = asyncio.Event()
    engines.add_listener(lambda p: arrived.set() if p.completed >= 1024 * 1024 else None)
    release = await engines.latest()
    build, _ = pick_build(release, LINUX)
    job = engines.start(build, release.tag)
    await arrived.wait()
    cancelled = await engines.cancel(build.asset.name)
    release_twin.release_stall()
    assert cancelled is not None and cancelled.state is PullState.CANCELLED and (await job.wait()).error is None
    kept = (engines.downloads / f"{build.asset.name}.incomplete").stat().st_size
    assert kept >= 1024 * 1024 and engines.installed() == []
    final = await engines.start(build, release.tag).wait()
    assert final.state is PullState.DONE, final.error
    last = [r for r in release_twin.requests if r.path.startswith("/objects/")][-1]
    assert last.headers["range"] == f"bytes={kept}-"
    assert engines.current() is not None and leftovers(engines) == []
    assert seen[-1].done and size == max(p.total for p in seen)


@pytest.mark.asyncio
async def test_this_machine_is_detected_for_the_pick(release_twin, client, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, rocm-smi or vulkaninfo: no GPU
    platform = await detect_platform()
    assert (platform.os, platform.arch) == this_platform_base() and platform.gpus == ()
    if (platform.os, platform.arch) != ("linux", "x64"):
        pytest.skip("the release_twin's release carries the builds of a Linux x64 machine")
    engines, _ = installer(client, tmp_path)
    build, others = pick_build(await engines.latest(), platform)
    assert build.asset.name == f"llama-{TAG}-bin-ubuntu-x64.tar.gz"
    assert [b.asset.name for b in others] == [f"llama-{TAG}-bin-ubuntu-vulkan-x64.tar.gz"]


@pytest.mark.asyncio
async def test_a_cuda_build_comes_with_its_runtime_beside_it(release_twin, client, tmp_path, archives):
    runtime = tar_archive(tmp_path / "cudart.tar.gz", f"llama-{TAG}", {"libcudart.so.12": b"\x7fELF runtime"})
    release = release_twin.releases[0]
    release_twin.add(release, f"llama-{TAG}-bin-ubuntu-cuda-12.4-x64.tar.gz", archives["real"])
    release_twin.add(release, "cudart-llama-bin-ubuntu-cuda-12.4-x64.tar.gz", runtime)
    engines, seen = installer(client, tmp_path)
    final, name = await install(engines, Platform("linux", "x64", ("nvidia",)))
    assert final.state is PullState.DONE, final.error
    assert name == f"llama-{TAG}-bin-ubuntu-cuda-12.4-x64.tar.gz"
    assert max(p.total for p in seen) == archives["real"].stat().st_size + runtime.stat().st_size
    [engine] = engines.installed()
    assert engine.backend == "cuda-12.4" and (engine.binary.parent / "libcudart.so.12").is_file()
    assert leftovers(engines) == []
