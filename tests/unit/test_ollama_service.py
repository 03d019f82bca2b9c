"""OllamaService through the real `ollama.AsyncClient` against the loopback Ollama server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import ollama
import pytest
import pytest_asyncio

from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    ModelNotFound,
    ServerError,
    Unreachable,
)
from desktop_app.domain.ollama import DiskFull, OllamaHost, PullProgress, PullState
from desktop_app.services.local.ollama import OllamaService
from tests.servers.ollama_server import OllamaServer, catalog_model

GB = 1_000_000_000
TIMEOUT = 20


def plenty_of_disk(_path: str) -> SimpleNamespace:
    return SimpleNamespace(total=500 * GB, used=100 * GB, free=400 * GB)


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(
        installed=["llama3.2:1b", "gemma3:270m", "qwen2.5:0.5b"], tick_s=0.002, bytes_per_tick=100_000
    ) as srv:
        yield srv


class Recorder:
    """Pull snapshots as listeners get them, with waits on conditions (no sleeps)."""

    def __init__(self) -> None:
        self.snapshots: list[PullProgress] = []
        self._waiters: list[tuple[Callable[[PullProgress], bool], asyncio.Future[PullProgress]]] = []

    def __call__(self, progress: PullProgress) -> None:
        self.snapshots.append(progress)
        for check, future in list(self._waiters):
            if not future.done() and check(progress):
                future.set_result(progress)

    async def until(self, check: Callable[[PullProgress], bool]) -> PullProgress:
        future: asyncio.Future[PullProgress] = asyncio.get_running_loop().create_future()
        self._waiters.append((check, future))
        return await asyncio.wait_for(future, TIMEOUT)


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest_asyncio.fixture
async def make_service(tmp_path: Path, delays: list[float]) -> AsyncIterator[Callable[..., OllamaService]]:
    services: list[OllamaService] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    def make(url: str, **overrides: object) -> OllamaService:
        options: dict[str, object] = {
            "state_file": tmp_path / "ollama-pulls.json",
            "sleep": fake_sleep,
            "disk_usage": plenty_of_disk,
            "models_dir": tmp_path / "models",
        }
        options.update(overrides)
        service = OllamaService(OllamaHost(url=url), **options)  # type: ignore[arg-type]
        services.append(service)
        return service

    yield make
    for service in services:
        await service.aclose()


@pytest_asyncio.fixture
async def service(server: OllamaServer, make_service: Callable[..., OllamaService]) -> OllamaService:
    return make_service(server.base_url)


@pytest.fixture
def recorder(service: OllamaService) -> Recorder:
    recorder = Recorder()
    service.add_pull_listener(recorder)
    return recorder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pulls(server: OllamaServer) -> int:
    return sum(1 for r in server.requests if r.path == "/api/pull")


# --- the server and its models -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_host_status_reports_the_version(service: OllamaService) -> None:
    status = await service.host_status()
    assert status.reachable and status.version == "0.12.6"
    assert status.sentence.startswith("Ollama 0.12.6 at 127.0.0.1:")


@pytest.mark.asyncio
async def test_a_host_that_is_down_is_unreachable_in_one_sentence(make_service) -> None:
    service = make_service(f"http://127.0.0.1:{free_port()}")
    status = await service.host_status()
    assert not status.reachable and isinstance(status.error, Unreachable)
    assert status.sentence == (
        f"Could not reach Ollama at {service.host.address}. Start it with `ollama serve` or check the address."
    )
    with pytest.raises(Unreachable, match="Could not reach Ollama"):
        await service.installed()


@pytest.mark.asyncio
async def test_installed_models(service: OllamaService) -> None:
    models = {m.name: m for m in await service.installed()}
    assert set(models) == {"llama3.2:1b", "gemma3:270m", "qwen2.5:0.5b"}
    gemma = models["gemma3:270m"]
    assert (gemma.family, gemma.parameter_size, gemma.quantization) == ("gemma3", "268.10M", "Q8_0")
    assert gemma.size == 291_554_930 and gemma.modified is not None and len(gemma.digest) == 64


@pytest.mark.asyncio
async def test_details(service: OllamaService) -> None:
    details = await service.details("gemma3:270m")
    assert details.context_length == 32768
    assert details.capabilities == ("completion",)
    assert details.system == "You are a helpful assistant."  # read from the Modelfile
    assert "temperature" in details.parameters and "{{ .Prompt }}" in details.template
    assert details.license.startswith("MIT License")
    assert details.modelfile.startswith("# Modelfile generated by")
    assert (await service.details("llama3.2:1b")).system == ""


@pytest.mark.asyncio
async def test_bidi_overrides_a_model_author_wrote_are_not_passed_on(
    server: OllamaServer, service: OllamaService
) -> None:
    # U+202E would show "gpj.exe" as "exe.jpg"; names cannot hold it, the rest of a model can.
    server.add_to_catalog(
        catalog_model(
            "trick:latest",
            1_000_000,
            family="\u202eamall",
            parameter_size="\u20661B",
            system="Save as \u202egpj.exe\u202c please.",
        )
    )
    server.install("trick:latest")

    models = {m.name: m for m in await service.installed()}
    assert (models["trick:latest"].family, models["trick:latest"].parameter_size) == ("amall", "1B")
    details = await service.details("trick:latest")
    assert details.system == "Save as gpj.exe please." and details.family == "amall"
    assert "\u202e" not in details.modelfile


@pytest.mark.asyncio
async def test_details_of_an_unknown_model(service: OllamaService) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await service.details("nope")
    assert caught.value.message == f"Ollama at {service.host.address} has no model named nope."


@pytest.mark.asyncio
async def test_load_and_unload_change_what_runs(server: OllamaServer, service: OllamaService) -> None:
    await service.load("qwen2.5:0.5b")
    [running] = await service.running()
    assert running.name == "qwen2.5:0.5b" and running.size == running.size_vram == 397_821_319
    assert running.expires_at is not None and running.gpu_share == 1.0
    await service.unload("qwen2.5:0.5b")
    assert await service.running() == []
    unload = [r.body for r in server.requests if r.path == "/api/generate"][-1]
    assert unload == {"model": "qwen2.5:0.5b", "stream": False, "keep_alive": 0}


@pytest.mark.asyncio
async def test_delete_and_copy(server: OllamaServer, service: OllamaService) -> None:
    await service.copy("llama3.2:1b", "my-llama")
    assert "my-llama:latest" in {m.name for m in await service.installed()}
    await service.delete("my-llama")
    assert "my-llama:latest" not in server.installed_names()
    with pytest.raises(ModelNotFound, match="has no model named my-llama"):
        await service.delete("my-llama")
    with pytest.raises(ModelNotFound):
        await service.copy("nope", "other")
    delete = next(r for r in server.requests if r.path == "/api/delete")
    assert delete.method == "DELETE" and delete.body == {"model": "my-llama"}


@pytest.mark.asyncio
async def test_the_key_goes_in_a_header_never_in_the_url(make_service) -> None:
    with OllamaServer(installed=["tiny"], api_key="k-secret") as srv:
        good = make_service(srv.base_url, api_key="k-secret")
        assert [m.name for m in await good.installed()] == ["tiny:latest"]
        assert (await good.host_status()).reachable
        bad = make_service(srv.base_url)
        with pytest.raises(AuthFailed, match="refused the request"):
            await bad.installed()
        assert isinstance((await bad.host_status()).error, AuthFailed)
        assert all("k-secret" not in r.path for r in srv.requests)
        assert srv.requests[0].headers["authorization"] == "Bearer k-secret"


# --- pulls ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pull_to_completion(server: OllamaServer, service: OllamaService, recorder: Recorder) -> None:
    server.bytes_per_tick = 20_000  # ~0.3 s: long enough for a speed and an ETA
    job = service.start_pull("tiny")
    final = await asyncio.wait_for(job.wait(), TIMEOUT)
    assert final.done and final.state is PullState.DONE and final.fraction == 1.0
    assert "tiny:latest" in {m.name for m in await service.installed()}

    layers = server.layers_of("tiny")
    assert recorder.snapshots[-1] == final
    assert set(final.layers) == {layer.digest for layer in layers}
    assert final.completed == final.total == sum(layer.size for layer in layers)
    assert final.layers_done == len(layers)
    completed = [s.completed for s in recorder.snapshots]
    assert completed == sorted(completed), "overall progress never goes back"
    for layer in layers:
        mine = [s.layers[layer.digest][0] for s in recorder.snapshots if layer.digest in s.layers]
        assert mine == sorted(mine)
    assert any(s.bytes_per_s > 0 and s.eta_s is not None for s in recorder.snapshots)
    # Coalesced: many lines arrived, far fewer snapshots went out, never two within the interval
    # (the last one, a final state, goes out at once).
    assert job.events > 30 and job.published < job.events
    assert await service.unfinished_pulls() == []


@pytest.mark.asyncio
async def test_progress_is_coalesced(server: OllamaServer, make_service) -> None:
    # With the service's clock standing still, every line after the first falls inside the
    # publish interval: all of them are folded into the one snapshot that the end sends at once.
    service = make_service(server.base_url, clock=lambda: 0.0, publish_interval=1000.0)
    recorder = Recorder()
    service.add_pull_listener(recorder)
    job = service.start_pull("tiny")
    final = await asyncio.wait_for(job.wait(), TIMEOUT)
    assert job.events > 30
    assert job.published == 2 and [s.state for s in recorder.snapshots] == [PullState.RUNNING, PullState.DONE]
    assert recorder.snapshots[-1] == final and final.completed == final.total


@pytest.mark.asyncio
async def test_several_pulls_at_once(server: OllamaServer, service: OllamaService) -> None:
    server.add_to_catalog(catalog_model("other", 2_000_000))
    first, second = service.start_pull("tiny"), service.start_pull("other")
    assert service.start_pull("tiny:latest") is first  # the same pull, not a second one
    results = await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), TIMEOUT)
    assert [r.state for r in results] == [PullState.DONE, PullState.DONE]
    assert {"tiny:latest", "other:latest"} <= set(server.installed_names())


@pytest.mark.asyncio
async def test_cancel_then_resume_continues_from_the_bytes_done(
    server: OllamaServer, service: OllamaService, recorder: Recorder
) -> None:
    server.bytes_per_tick = 20_000
    weights = server.layers_of("tiny")[0].digest
    service.start_pull("tiny")
    await recorder.until(lambda p: p.layers.get(weights, (0, 0))[0] >= 600_000)
    cancelled = await service.cancel_pull("tiny")
    assert cancelled is not None and cancelled.state is PullState.CANCELLED
    before = cancelled.layers[weights][0]
    assert server.blob_bytes(weights) >= before  # Ollama kept the partial blob
    [unfinished] = await service.unfinished_pulls()
    assert (unfinished.model, unfinished.state) == ("tiny:latest", PullState.CANCELLED)
    assert unfinished.completed >= before

    recorder.snapshots.clear()
    server.bytes_per_tick = 200_000
    job = service.resume_pull("tiny")
    final = await asyncio.wait_for(job.wait(), TIMEOUT)
    assert final.state is PullState.DONE
    first = next(s for s in recorder.snapshots if weights in s.layers)
    assert first.layers[weights][0] >= before, "resumed from the bytes already on disk"
    assert server.client_disconnects >= 1  # cancelling closed the stream
    assert await service.unfinished_pulls() == []


@pytest.mark.asyncio
async def test_a_dropped_connection_is_retried_and_the_pull_completes(
    server: OllamaServer, service: OllamaService, recorder: Recorder, delays: list[float]
) -> None:
    server.drop_pulls(after_lines=5)
    job = service.start_pull("tiny")
    final = await asyncio.wait_for(job.wait(), TIMEOUT)
    assert final.state is PullState.DONE and final.attempt == 2
    assert delays == [1.0]
    assert pulls(server) == 2
    retrying = [s for s in recorder.snapshots if s.state is PullState.RETRYING]
    assert retrying and retrying[0].retry_in_s == 1.0
    completed = [s.completed for s in recorder.snapshots]
    assert completed == sorted(completed)


@pytest.mark.asyncio
async def test_retries_back_off_exponentially_then_give_up(
    server: OllamaServer, service: OllamaService, delays: list[float]
) -> None:
    server.drop_pulls(after_lines=2, times=10)
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert final.state is PullState.FAILED
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert pulls(server) == 5
    assert isinstance(final.error, Unreachable)
    assert final.error.message == (
        f"The connection to Ollama at {service.host.address} was lost during the pull of tiny:latest."
    )
    assert final.error.action == "Resume the pull once Ollama is reachable again."
    [unfinished] = await service.unfinished_pulls()
    assert unfinished.state is PullState.FAILED


@pytest.mark.asyncio
async def test_a_full_disk_fails_in_one_sentence_without_retrying(
    server: OllamaServer, service: OllamaService, delays: list[float]
) -> None:
    server.disk_free = 1_000_000
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert final.state is PullState.FAILED and isinstance(final.error, DiskFull)
    assert final.error.message == ("The disk holding Ollama's models is full, so tiny:latest could not be pulled.")
    assert delays == [] and pulls(server) == 1


@pytest.mark.asyncio
async def test_an_unknown_model_fails_in_one_sentence(
    server: OllamaServer, service: OllamaService, delays: list[float]
) -> None:
    final = await asyncio.wait_for(service.start_pull("no-such-model").wait(), TIMEOUT)
    assert isinstance(final.error, ModelNotFound)
    assert final.error.message == "Ollama's library has no model named no-such-model:latest."
    assert delays == [] and pulls(server) == 1


@pytest.mark.asyncio
async def test_an_invalid_name_fails_without_retrying(
    server: OllamaServer, service: OllamaService, delays: list[float]
) -> None:
    final = await asyncio.wait_for(service.start_pull("bad name!").wait(), TIMEOUT)
    assert isinstance(final.error, BadRequest)
    assert final.error.message == "“bad name!:latest” is not a valid model name."
    assert delays == []
    with pytest.raises(BadRequest):
        service.start_pull("   ")


@pytest.mark.asyncio
async def test_pulling_from_a_host_that_is_down(make_service, delays: list[float]) -> None:
    service = make_service(f"http://127.0.0.1:{free_port()}")
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert isinstance(final.error, Unreachable)
    assert final.error.message == f"Could not reach Ollama at {service.host.address}."
    assert delays == []


@pytest.mark.asyncio
async def test_the_free_disk_check_refuses_before_pulling(server: OllamaServer, make_service, tmp_path: Path) -> None:
    asked: list[str] = []

    def small_disk(path: str) -> SimpleNamespace:
        asked.append(path)
        return SimpleNamespace(total=10 * GB, used=9.5 * GB, free=GB // 2)

    models = tmp_path / "ollama" / "models"  # absent: the nearest existing parent is asked
    service = make_service(server.base_url, disk_usage=small_disk, models_dir=models)
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert isinstance(final.error, DiskFull)
    assert final.error.message == (
        f"Only 500 MB is free on the disk holding Ollama's models ({models}); pulling needs at least 1.0 GB."
    )
    assert asked == [str(tmp_path)]
    assert pulls(server) == 0


@pytest.mark.asyncio
async def test_the_free_disk_check_uses_the_size_once_known(server: OllamaServer, make_service) -> None:
    def disk(_path: str) -> SimpleNamespace:
        return SimpleNamespace(total=10 * GB, used=8 * GB, free=2 * GB)

    service = make_service(server.base_url, disk_usage=disk)
    final = await asyncio.wait_for(service.start_pull("mistral").wait(), TIMEOUT)
    assert isinstance(final.error, DiskFull)
    assert final.error.message.startswith("mistral:latest needs 4.1 GB more but only 2.0 GB is free")
    assert pulls(server) == 1 and "mistral:latest" not in server.installed_names()


@pytest.mark.asyncio
async def test_a_remote_host_is_not_checked_for_disk_space(server: OllamaServer, make_service) -> None:
    def never(_path: str) -> SimpleNamespace:
        raise AssertionError("the models are on another machine")

    service = make_service(server.base_url.replace("127.0.0.1", "ollama-box.invalid"), disk_usage=never)
    assert not service.host.is_local
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert isinstance(final.error, Unreachable)  # the made-up host does not exist: no disk check ran


@pytest.mark.asyncio
async def test_unfinished_pulls_survive_a_restart(server: OllamaServer, make_service, tmp_path: Path) -> None:
    server.bytes_per_tick = 10_000
    first = make_service(server.base_url)
    recorder = Recorder()
    first.add_pull_listener(recorder)
    first.start_pull("tiny")
    await recorder.until(lambda p: p.completed > 100_000)
    await first.aclose()  # quitting mid-pull
    ledger = json.loads((tmp_path / "ollama-pulls.json").read_text())
    assert [e["state"] for e in ledger["pulls"].values()] == ["cancelled"]

    second = make_service(server.base_url)
    [unfinished] = await second.unfinished_pulls()
    assert unfinished.model == "tiny:latest" and unfinished.completed > 100_000
    other_host = make_service("http://127.0.0.1:1")
    assert await other_host.unfinished_pulls() == []
    await second.forget_pull("tiny")
    assert await second.unfinished_pulls() == []


@pytest.mark.asyncio
async def test_transient_and_permanent_server_errors() -> None:
    service = OllamaService(OllamaHost())
    try:
        busy = ollama.ResponseError('{"error":"server busy"}', 503)
        error = service._map(busy, model="x", pulling=True)
        assert isinstance(error, ServerError) and error.status == 503
        assert service._transient(busy, error, 1)
        broke = ollama.ResponseError("max retries exceeded: EOF")  # mid-stream, status -1
        assert service._transient(broke, service._map(broke, model="x", pulling=True), 1)
        cut = httpx.RemoteProtocolError("peer closed connection")
        assert service._transient(cut, service._map(cut, model="x", pulling=True), 1)
        odd = ollama.ResponseError("something new")
        odd_error = service._map(odd, model="x", pulling=True)
        assert odd_error.message == "Ollama at 127.0.0.1:11434 reported: something new"
        assert not service._transient(odd, odd_error, 1)
    finally:
        await service.aclose()


# --- saying what went wrong, as Ollama knows it --------------------------------------------------


@pytest.mark.asyncio
async def test_installed_models_say_which_cannot_chat(server: OllamaServer, service: OllamaService) -> None:
    server.install("nomic-embed-text")
    models = {m.name: m for m in await service.installed()}
    embed = models["nomic-embed-text:latest"]
    assert embed.capabilities == ("embedding",) and not embed.can_chat
    assert models["gemma3:270m"].capabilities == ("completion",) and models["gemma3:270m"].can_chat


@pytest.mark.asyncio
async def test_loading_an_embedding_model_gives_ollamas_reason(server: OllamaServer, service: OllamaService) -> None:
    server.install("nomic-embed-text")
    with pytest.raises(BadRequest) as info:
        await service.load("nomic-embed-text:latest")
    assert info.value.message == (
        f'Ollama at {service.host.address} says "nomic-embed-text:latest" does not support generate.'
    )
    assert "embedding model" in info.value.action


DNS = (
    'pull model manifest: Get "https://registry.ollama.ai/v2/library/tiny/manifests/latest": '
    "dial tcp: lookup registry.ollama.ai: no such host"
)
OFFLINE = (
    'pull model manifest: Get "https://registry.ollama.ai/v2/library/tiny/manifests/latest": '
    "dial tcp 104.21.75.227:443: connect: network is unreachable"
)
TLS = (
    'pull model manifest: Get "https://registry.ollama.ai/v2/library/tiny/manifests/latest": '
    "tls: failed to verify certificate: x509: certificate signed by unknown authority"
)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("raw", "message", "action"),
    [
        (
            DNS,
            "could not look up registry.ollama.ai: the machine it runs on seems to be offline.",
            "Check that machine's network and DNS, then resume the pull.",
        ),
        (
            OFFLINE,
            "could not reach registry.ollama.ai.",
            "Check the network of the machine Ollama runs on, then resume the pull.",
        ),
        (
            TLS,
            "could not make a secure connection to registry.ollama.ai (the certificate was not accepted).",
            "Check the clock of the machine Ollama runs on and any proxy that inspects HTTPS, then resume the pull.",
        ),
    ],
    ids=["dns", "offline", "tls"],
)
async def test_a_registry_ollama_cannot_reach_is_a_sentence_with_the_raw_text_in_the_details(
    server: OllamaServer, service: OllamaService, raw: str, message: str, action: str
) -> None:
    server.registry_error = raw
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert final.state is PullState.FAILED and isinstance(final.error, Unreachable)
    assert final.error.message == f"Ollama at {service.host.address} {message}"
    assert final.error.action == action
    assert "dial tcp" not in final.error.message and "x509" not in final.error.message
    assert final.detail == raw


@pytest.mark.asyncio
async def test_a_damaged_download_says_so_and_keeps_ollamas_words(server: OllamaServer, service: OllamaService) -> None:
    server.digest_mismatch = True
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert isinstance(final.error, ServerError)
    assert final.error.message == (
        f"Part of tiny:latest arrived damaged (its sha256 digest did not match), "
        f"so Ollama at {service.host.address} threw that part away."
    )
    assert final.error.action == "Retry the pull: that part is downloaded again."
    assert final.detail.startswith("digest mismatch, file must be downloaded again: want sha256:")

    server.digest_mismatch = False
    again = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert again.state is PullState.DONE


@pytest.mark.asyncio
async def test_a_full_disk_that_took_the_partial_back_leaves_no_bytes_claimed(
    server: OllamaServer, service: OllamaService
) -> None:
    server.disk_free, server.disk_full_rollback = 1_000_000, True
    weights = server.layers_of("tiny")[0]
    final = await asyncio.wait_for(service.start_pull("tiny").wait(), TIMEOUT)
    assert isinstance(final.error, DiskFull)
    assert server.pull_lines >= 5  # the weights' progress was reported before the disk filled
    assert server.blob_bytes(weights.digest) == 0  # Ollama took the partial file back
    assert final.layers[weights.digest] == (0, weights.size)
    assert final.completed == 0 and final.fraction == 0.0
    assert final.detail.endswith("no space left on device")
    [unfinished] = await service.unfinished_pulls()
    assert unfinished.completed == 0
