"""LlamaCppService and ManagedServer against the real llama-server and the real Gemma 270M GGUF."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from desktop_app.domain.errors import BadRequest, ModelNotFound, Unreachable
from desktop_app.domain.llamacpp import (
    BINARY_NOT_FOUND,
    BinaryNotFound,
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    RouterModelStatus,
    ServerStartFailed,
    builtin_template_args,
    presets_ini,
)
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_managed import ManagedServer, find_binary, free_port
from tests.servers.llama import LlamaServer, real_artifacts

# Servers started in this module live across tests, so the tests share the module's loop.
module_loop = pytest.mark.asyncio(loop_scope="module")

GEMMA_PRESETS = presets_ini({"*": {"jinja": False, "chat-template": "gemma"}})


@pytest.fixture(scope="module")
def artifacts() -> tuple[Path, Path]:
    return real_artifacts()


@pytest.fixture(scope="module")
def scratch_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The server must neither read nor write the user's caches.
    home = tmp_path_factory.mktemp("llama-home")
    return {"HOME": str(home), "LLAMA_CACHE": str(home / "cache")}


@pytest.fixture(scope="module")
def single() -> Iterator[LlamaServer]:
    with LlamaServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service() -> AsyncIterator[LlamaCppService]:
    async with httpx.AsyncClient() as http:
        yield LlamaCppService(http)


def model_spec(artifacts: tuple[Path, Path], env: dict[str, str], model: Path | None = None) -> ManagedServerSpec:
    binary, gguf = artifacts
    return ManagedServerSpec(
        model=model or gguf,
        binary=str(binary),
        ctx=2048,
        threads=2,
        alias="gemma",
        extra_args=builtin_template_args("gemma"),
        env=env,
    )


class StateLog:
    """Every state a managed server announces, and a way to wait for one."""

    def __init__(self, server: ManagedServer) -> None:
        self.states: list[ManagedState] = []
        self._changed = asyncio.Event()
        server.add_state_listener(self._on_state)

    def _on_state(self, state: ManagedState) -> None:
        self.states.append(state)
        self._changed.set()

    @property
    def statuses(self) -> list[str]:
        return [s.status.value for s in self.states]

    async def wait_for(self, status: ManagedStatus, timeout: float = 15.0) -> ManagedState:
        async def until() -> ManagedState:
            while not self.states or self.states[-1].status is not status:
                self._changed.clear()
                await self._changed.wait()
            return self.states[-1]

        return await asyncio.wait_for(until(), timeout)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid)


# --- finding the binary ------------------------------------------------------------------------------


def test_a_missing_binary_is_one_sentence_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(BinaryNotFound) as raised:
        find_binary("", path=str(tmp_path))
    assert str(raised.value) == BINARY_NOT_FOUND
    assert BINARY_NOT_FOUND == (
        "llama-server was not found: install llama.cpp from the llama.cpp pane's Local engine box, "
        "set the path of one there, or put it on PATH."
    )
    with pytest.raises(BinaryNotFound):
        find_binary(str(tmp_path / "no-such-llama-server"), path=str(tmp_path))


def test_the_binary_comes_from_the_setting_then_path(tmp_path: Path, artifacts: tuple[Path, Path]) -> None:
    binary, _ = artifacts
    assert find_binary(str(binary), path="") == binary
    (tmp_path / "llama-server").symlink_to(binary)
    assert find_binary("", path=str(tmp_path)) == tmp_path / "llama-server"
    assert find_binary("llama-server", path=str(tmp_path)) == tmp_path / "llama-server"


@module_loop
async def test_starting_without_a_binary_says_so_and_starts_nothing(
    service: LlamaCppService,
    artifacts: tuple[Path, Path],
    scratch_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = ManagedServerSpec(model=artifacts[1], env=scratch_env)
    server = service.managed(spec)
    with pytest.raises(BinaryNotFound, match="llama-server was not found"):
        await server.start()
    assert server.pid is None and server.state.status is ManagedStatus.STOPPED


def test_the_command_line_says_what_the_spec_says(tmp_path: Path) -> None:
    model = tmp_path / "tiny-model.Q4_K_M.gguf"
    spec = ManagedServerSpec(model=model, ctx=8192, extra_args=builtin_template_args("gemma"))
    assert spec.command("/bin/llama-server", 9001) == [
        "/bin/llama-server",
        "-m",
        str(model),
        "--alias",
        "tiny-model.Q4_K_M",
        "--host",
        "127.0.0.1",
        "--port",
        "9001",
        "-c",
        "8192",
        "--no-jinja",
        "--chat-template",
        "gemma",
    ]
    tuned = ManagedServerSpec(model=model, alias="tiny", threads=4, gpu_layers=0)
    assert tuned.command("llama-server", 1)[3:5] == ["--alias", "tiny"]
    assert tuned.command("llama-server", 1)[-4:] == ["-t", "4", "-ngl", "0"]
    router = ManagedServerSpec(models_dir=tmp_path, models_max=3)
    assert router.router and router.title == tmp_path.name
    assert router.command("llama-server", 2, tmp_path / "p.ini")[:7] == [
        "llama-server",
        "--models-dir",
        str(tmp_path),
        "--models-max",
        "3",
        "--models-preset",
        str(tmp_path / "p.ini"),
    ]
    assert GEMMA_PRESETS == "[*]\njinja = false\nchat-template = gemma\n"
    with pytest.raises(ValueError, match="exactly one of a model file or a models folder"):
        ManagedServerSpec()


@module_loop
async def test_a_server_that_cannot_start_says_why(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    server = service.managed(model_spec(artifacts, scratch_env, model=broken))
    with pytest.raises(ServerStartFailed) as raised:
        await server.start()
    assert raised.value.exit_code == 1
    assert raised.value.message == (
        "llama-server stopped while starting (exit code 1): "
        "gguf_init_from_reader: invalid magic characters: 'not ', expected 'GGUF'"
    )
    assert server.state.status is ManagedStatus.CRASHED and server.state.log_tail
    assert server.pid is None


# --- inspecting ----------------------------------------------------------------------------------------


@module_loop
async def test_inspect_a_single_model_server(service: LlamaCppService, single: LlamaServer) -> None:
    info = await service.inspect(single.base_url + "/v1/")  # an account's base URL works too
    assert info.url == single.base_url
    assert info.healthy and not info.loading and not info.router_mode
    assert info.model_alias == "gemma"
    assert info.model_path == str(single.model)
    assert info.n_ctx == 4096
    assert info.total_slots is not None and info.total_slots >= 1
    assert info.busy_slots == 0
    assert info.build


@module_loop
async def test_an_unreachable_server_is_one_sentence(service: LlamaCppService) -> None:
    port = free_port()
    with pytest.raises(Unreachable) as raised:
        await service.inspect(f"http://127.0.0.1:{port}")
    assert raised.value.message == f"Could not connect to llama-server at 127.0.0.1:{port}."
    assert raised.value.action


@module_loop
async def test_router_calls_on_a_single_model_server_say_it_is_not_a_router(
    service: LlamaCppService, single: LlamaServer
) -> None:
    with pytest.raises(BadRequest, match="serves one model"):
        await service.router_models(single.base_url)


# --- a server of our own ------------------------------------------------------------------------------


@module_loop
async def test_managed_start_and_stop(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str]
) -> None:
    server = service.managed(model_spec(artifacts, scratch_env))
    states = StateLog(server)
    lines: list[str] = []
    server.add_log_listener(lines.append)
    try:
        state = await server.start()
        assert state.status is ManagedStatus.RUNNING and state.pid == server.pid
        assert states.statuses[0] == "starting" and states.statuses[-1] == "running"
        info = await service.inspect(server.url)
        assert info.healthy and info.model_alias == "gemma" and info.n_ctx == 2048
        assert lines[0].startswith("$ ") and " --port " in lines[0]
        assert any("listening" in line for line in lines), lines[-5:]
        assert server.log_lines == lines
    finally:
        pid = server.pid
        await server.stop()
    assert server.state.status is ManagedStatus.STOPPED and states.statuses[-1] == "stopped"
    assert pid is not None and gone(pid)
    with pytest.raises(Unreachable):
        await service.inspect(server.url)
    await server.stop()  # a second stop is harmless


@module_loop
async def test_a_crash_is_reported_and_restart_brings_the_server_back(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str]
) -> None:
    server = service.managed(model_spec(artifacts, scratch_env))
    states = StateLog(server)
    try:
        await server.start()
        url, first_pid = server.url, server.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)  # the child we started, by its PID

        crashed = await states.wait_for(ManagedStatus.CRASHED)
        assert crashed.exit_code == -signal.SIGKILL
        assert crashed.message == "llama-server stopped unexpectedly (signal 9 (killed))."
        assert crashed.log_tail and any("listening" in line for line in crashed.log_tail)
        assert server.state is crashed

        restarted = await server.restart()
        assert restarted.status is ManagedStatus.RUNNING
        assert server.url == url and server.pid != first_pid
        assert (await service.inspect(url)).healthy
        assert states.statuses[-3:] == ["starting", "starting", "running"]
    finally:
        await server.stop()


@module_loop
async def test_switch_model_restarts_on_the_other_file(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "gemma-copy.gguf"
    other.symlink_to(artifacts[1])
    server = service.managed(model_spec(artifacts, scratch_env))
    try:
        await server.start()
        first_pid = server.pid
        assert (await service.inspect(server.url)).model_path == str(artifacts[1])

        state = await server.switch_model(other)
        assert state.status is ManagedStatus.RUNNING and server.pid != first_pid
        assert server.spec.model == other
        info = await service.inspect(server.url)
        assert info.healthy and info.model_path == str(other)
    finally:
        await server.stop()
    assert first_pid is not None and gone(first_pid)


# --- router mode ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def router(
    service: LlamaCppService,
    artifacts: tuple[Path, Path],
    scratch_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ManagedServer]:
    binary, gguf = artifacts
    folder = tmp_path_factory.mktemp("gguf-folder")
    for name in ("gemma-a.gguf", "gemma-b.gguf"):  # one model under two names
        (folder / name).symlink_to(gguf)
    spec = ManagedServerSpec(
        models_dir=folder, binary=str(binary), ctx=2048, threads=2, models_max=2, presets=GEMMA_PRESETS, env=scratch_env
    )
    server = service.managed(spec)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


@module_loop
async def test_router_lists_loads_and_unloads(service: LlamaCppService, router: ManagedServer) -> None:
    info = await service.inspect(router.url)
    assert info.router_mode and info.healthy
    assert [(m.id, m.status) for m in info.models] == [
        ("gemma-a", RouterModelStatus.UNLOADED),
        ("gemma-b", RouterModelStatus.UNLOADED),
    ]
    assert info.models[0].path.endswith("gemma-a.gguf")

    await service.load(router.url, "gemma-a")
    loaded = await service.wait_model(router.url, "gemma-a", RouterModelStatus.LOADED)
    assert loaded.status is RouterModelStatus.LOADED
    info = await service.inspect(router.url)
    assert info.model_alias == "gemma-a" and info.n_ctx == 2048 and info.busy_slots == 0
    await service.load(router.url, "gemma-a")  # loaded already: fine

    await service.unload(router.url, "gemma-a")
    await service.wait_model(router.url, "gemma-a", RouterModelStatus.UNLOADED)
    assert {m.id: m.status for m in await service.router_models(router.url)} == {
        "gemma-a": RouterModelStatus.UNLOADED,
        "gemma-b": RouterModelStatus.UNLOADED,
    }
    await service.unload(router.url, "gemma-a")  # not running: fine

    with pytest.raises(ModelNotFound):
        await service.load(router.url, "no-such-model")


@module_loop
async def test_router_switch_then_chat_through_litellm(service: LlamaCppService, router: ManagedServer) -> None:
    import litellm

    first = await service.switch(router.url, "gemma-a")
    assert first.status is RouterModelStatus.LOADED
    second = await service.switch(router.url, "gemma-b")
    assert second.id == "gemma-b" and second.status is RouterModelStatus.LOADED
    assert {m.id: m.status for m in await service.router_models(router.url)} == {
        "gemma-a": RouterModelStatus.UNLOADED,
        "gemma-b": RouterModelStatus.LOADED,
    }

    response = await litellm.acompletion(
        model="openai/gemma-b",
        api_base=f"{router.url}/v1",
        api_key="none",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        temperature=0,
    )
    assert isinstance(response.choices[0].message.content, str)
    assert response.usage.completion_tokens > 0
    # The chat went to the loaded model: nothing else was loaded for it.
    assert {m.id: m.status for m in await service.router_models(router.url)} == {
        "gemma-a": RouterModelStatus.UNLOADED,
        "gemma-b": RouterModelStatus.LOADED,
    }


@module_loop
async def test_a_status_refresh_landing_during_a_switch_never_loads_the_old_model_again(
    service: LlamaCppService, router: ManagedServer
) -> None:
    """The pane's periodic refresh asks while Switch unloads the old model (reproduced 3 of 3 before)."""
    await service.switch(router.url, "gemma-a")
    named: list[httpx.URL] = []  # status requests that named a model
    unload_answered, go_on = asyncio.Event(), asyncio.Event()

    async def on_request(request: httpx.Request) -> None:
        if request.method == "GET" and "model" in request.url.params:
            named.append(request.url)

    async def on_response(response: httpx.Response) -> None:
        if response.request.url.path == "/models/unload":
            unload_answered.set()
            await go_on.wait()  # Switch waits here: the router is unloading gemma-a meanwhile

    async with httpx.AsyncClient(event_hooks={"request": [on_request], "response": [on_response]}) as http:
        racing = LlamaCppService(http)
        switch = asyncio.ensure_future(racing.switch(router.url, "gemma-b", timeout=60))
        try:
            await asyncio.wait_for(unload_answered.wait(), 30)
            info = await racing.inspect(router.url)  # the refresh, landing mid-unload
            assert info.router_mode and racing.unloading(router.url, "gemma-a")
            assert [url for url in named if url.params["model"] == "gemma-a"] == []
        except BaseException:
            switch.cancel()
            await asyncio.gather(switch, return_exceptions=True)
            raise
        finally:
            go_on.set()
        loaded = await switch
        assert loaded.id == "gemma-b" and not racing.unloading(router.url, "gemma-a")
        assert {m.id: m.status for m in await racing.router_models(router.url)} == {
            "gemma-a": RouterModelStatus.UNLOADED,
            "gemma-b": RouterModelStatus.LOADED,
        }
        info = await racing.inspect(router.url)  # one model loaded: its own figures again
        assert info.model_alias == "gemma-b" and info.n_ctx == 2048
    # Each status request that names a model tells the router not to load it.
    assert named and all(url.params["autoload"] == "false" for url in named)


# --- restarting, as the chat sees it ---------------------------------------------------------------


@module_loop
async def test_a_switch_is_seen_as_restarting_and_can_be_waited_for(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "gemma-b.gguf"
    os.symlink(artifacts[1], other)
    server = service.managed(model_spec(artifacts, scratch_env))
    states = StateLog(server)
    try:
        await server.start()
        account_url = f"{server.url}/v1"  # what a chat account holds
        assert not server.restarting and not service.restarting(account_url)
        assert await service.wait_ready(account_url, 5.0) is False  # nothing to wait for
        before = service.restarts(account_url)

        switch = asyncio.ensure_future(server.switch_model(other))
        await states.wait_for(ManagedStatus.STOPPED)  # the old process is gone, the new one not up yet
        assert server.restarting
        assert service.restarting(account_url) and service.restarting(server.url + "/")
        assert not service.restarting(f"http://127.0.0.1:{free_port()}/v1")
        assert service.restarts(account_url) == before + 1
        assert await service.wait_ready(account_url, 0.01) is False  # gave up; the switch goes on

        assert await service.wait_ready(account_url, 60.0) is True
        assert not server.restarting and not service.restarting(account_url)
        assert (await switch).status is ManagedStatus.RUNNING
        info = await service.inspect(account_url)
        assert info.healthy and info.model_path == str(other)
        assert await service.wait_ready(account_url, 5.0) is False  # over: nothing to wait for
    finally:
        await server.stop()


@module_loop
async def test_waiting_for_a_switch_that_fails_says_so(
    service: LlamaCppService, artifacts: tuple[Path, Path], scratch_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    server = service.managed(model_spec(artifacts, scratch_env))
    states = StateLog(server)
    try:
        await server.start()
        switch = asyncio.ensure_future(server.switch_model(broken))
        await states.wait_for(ManagedStatus.STOPPED)
        waiting = asyncio.ensure_future(service.wait_ready(server.url, 60.0))
        with pytest.raises(ServerStartFailed):
            await switch
        assert await waiting is False
        assert not service.restarting(server.url) and server.state.status is ManagedStatus.CRASHED
    finally:
        await server.stop()


def test_link_models_makes_one_folder_of_links_over_many(tmp_path: Path) -> None:
    from desktop_app.services.local.gguf_links import link_models

    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    for folder in (a, b):
        folder.mkdir()
    for path in (
        a / "x.gguf",
        b / "x.gguf",
        a / "big-00001-of-00002.gguf",
        a / "big-00002-of-00002.gguf",
        a / "mmproj-f16.gguf",
    ):
        path.write_bytes(b"GGUF")
    made = link_models([a / "x.gguf", b / "x.gguf", a / "big-00001-of-00002.gguf", a / "mmproj-f16.gguf"], out)
    assert [p.name for p in made] == ["x.gguf", "b-x.gguf", "big-00001-of-00002.gguf"]
    assert sorted(p.name for p in out.iterdir()) == [
        "b-x.gguf",
        "big-00001-of-00002.gguf",
        "big-00002-of-00002.gguf",
        "x.gguf",
    ]
    assert (out / "b-x.gguf").resolve() == (b / "x.gguf").resolve()
    # Made again from fewer files: the old links go, anything else in the folder stays.
    (out / "notes.txt").write_text("mine")
    assert [p.name for p in link_models([b / "x.gguf"], out)] == ["x.gguf"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "x.gguf"]
    assert (out / "x.gguf").resolve() == (b / "x.gguf").resolve()
