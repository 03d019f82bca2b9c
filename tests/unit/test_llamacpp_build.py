"""SourceBuilder against the release twin, whose tarball_url serves a tiny real CMake project that
builds a `llama-server` printing a llama.cpp-style version: the real cmake and compiler run with
the provisioning script's recipe, the log streams, cancel kills the build, and a failure is one
sentence with nothing left behind."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from desktop_app.domain.engine import EngineError
from desktop_app.services.http_client import http_client
from desktop_app.services.local.llamacpp_build import CMAKE_FLAGS, SourceBuilder, build_tools
from desktop_app.services.local.llamacpp_install import EngineInstaller
from tests.servers.llamacpp_releases import LlamaCppReleasesTwin
from tests.unit.engine_archives import CMAKE_LISTS, SERVER_CPP, tar_archive

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "provision_test_servers.py"
TAG = "b9200"
pytestmark = pytest.mark.skipif(build_tools() is None, reason="cmake and a C++ compiler are needed")


@pytest.fixture
def twin(tmp_path) -> Iterator[LlamaCppReleasesTwin]:
    server = LlamaCppReleasesTwin()
    top = "ggml-org-llama.cpp-abc1234"
    good = tar_archive(tmp_path / "src.tar.gz", top, {"CMakeLists.txt": CMAKE_LISTS, "server.cpp": SERVER_CPP})
    server.release(TAG, source=good)
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout=30.0) as client:
        yield client


def builder(client, twin, tmp_path, **environ: str) -> tuple[SourceBuilder, EngineInstaller]:
    engines = EngineInstaller(client, tmp_path / "data", releases=twin.api_url, reserve_bytes=0)
    return SourceBuilder(client, engines, jobs=1, environ={**os.environ, **environ}), engines


def test_the_recipe_is_the_test_provisioning_one():
    spec = importlib.util.spec_from_file_location("provision_test_servers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert list(CMAKE_FLAGS) == module.CMAKE_FLAGS


@pytest.mark.asyncio
async def test_builds_installs_and_runs_the_binary(twin, client, tmp_path):
    source, engines = builder(client, twin, tmp_path)
    streamed: list[str] = []
    source.add_log_listener(streamed.append)
    engine = await source.build(await engines.latest())
    assert engine.tag == TAG and engine.backend == "source"
    assert engine.version is not None and (engine.version.version, engine.version.commit) == ("9200", "abc1234")
    assert [e.tag for e in engines.installed()] == [TAG]
    assert streamed[0].startswith("$ ") and " -S " in streamed[0] and "-DGGML_NATIVE=OFF" in streamed[0]
    assert any("--target llama-server" in line for line in streamed)
    assert [p.name for p in engines.root.iterdir() if p.name.startswith(".")] == []


@pytest.mark.asyncio
async def test_cancel_kills_the_build_and_leaves_nothing(twin, client, tmp_path):
    source, engines = builder(client, twin, tmp_path, TWIN_BUILD_WAITS="1")
    waiting = asyncio.Event()
    source.add_log_listener(lambda line: waiting.set() if "configure waits for the test" in line else None)
    task = asyncio.create_task(source.build(await engines.latest()))
    await waiting.wait()
    children = [p.pid for p in psutil.Process().children(recursive=True)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.lines[-1] == "Build cancelled."
    assert not [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert engines.installed() == [] and list(engines.root.iterdir()) == []


@pytest.mark.asyncio
async def test_a_failed_compile_is_one_sentence(twin, client, tmp_path):
    broken = tar_archive(
        tmp_path / "broken.tar.gz", "src", {"CMakeLists.txt": CMAKE_LISTS, "server.cpp": b"int main( {"}
    )
    twin.release("b9300", source=broken)
    source, engines = builder(client, twin, tmp_path)
    with pytest.raises(EngineError, match=r"^Building llama.cpp failed while compiling \(exit code \d+\)\.$"):
        await source.build(await engines.latest())
    assert engines.installed() == [] and list(engines.root.iterdir()) == []


@pytest.mark.asyncio
async def test_without_cmake_or_a_compiler_it_says_so(twin, client, tmp_path):
    source, engines = builder(client, twin, tmp_path, PATH=str(tmp_path))
    with pytest.raises(EngineError, match="needs CMake and a C\\+\\+ compiler"):
        await source.build(await engines.latest())
