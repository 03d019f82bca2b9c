"""HubDownloads against the loopback Hub twin: the HF cache layout (that huggingface_hub itself
reads back), a folder of the user's, split models, progress, and each fault: a cut then a resume,
a restart, cancel, a damaged file, a full disk, a gated repo, a missing file. After a failure
nothing half-downloaded is where the library would list it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from desktop_app.domain.errors import DomainError
from desktop_app.domain.hub import DigestMismatch, GatedRepo, HubNotFound, NotEnoughSpace
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.local.gguf import GgufLibrary
from desktop_app.services.local.hf_downloads import DownloadRequest, HubDownloads, hub_cache_dir
from tests.unit.hub_models import GATED, GEMMA, GEMMA_FILE, SMALL, SPLIT_PARTS, TOKEN, hub_with
from tests.unit.sqlite_stores import file_size_limit, small_disk

pytestmark = pytest.mark.asyncio
pytest_plugins = ("tests.unit.hub_twin",)  # the twin, its files and the HTTP hub_http


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return hub_cache_dir()


def service(
    hub_http, cache_dir, tmp_path, token=None, **options
) -> tuple[HubDownloads, GgufLibrary, list[PullProgress]]:
    library = GgufLibrary(tmp_path / "gguf-cache.json", folders=[cache_dir])
    downloads = HubDownloads(
        hub_with(hub_http, token),
        hub_http,
        ledger_file=tmp_path / "downloads.json",
        library=library,
        cache_dir=cache_dir,
        retry_delays=options.pop("retry_delays", (0.0,)),
        reserve_bytes=options.pop("reserve_bytes", 0),
        publish_interval=0.0,
        **options,
    )
    seen: list[PullProgress] = []
    downloads.add_listener(seen.append)
    return downloads, library, seen


async def request_for(hub_http, repo_id: str, name: str, token=None, folder=None) -> DownloadRequest:
    hub = hub_with(hub_http, token)
    repo = await hub.repo(repo_id)
    quant = next(q for q in await hub.quant_files(repo_id, repo.sha) if q.name == name)
    return DownloadRequest(repo_id, quant, repo.sha, folder=folder)


def listed(library: GgufLibrary) -> list[Path]:
    result = library.scan_blocking()
    return [info.path for info in result.infos] + [problem.path for problem in result.problems]


def left_behind(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() and not path.name.endswith(".incomplete"))


async def test_a_download_lands_in_the_hf_cache_and_the_library_lists_it(twin, hub_http, cache_dir, tmp_path, gemma):
    downloads, library, seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, GEMMA, GEMMA_FILE)
    assert await downloads.cached(GEMMA, GEMMA_FILE) is None
    final = await downloads.start(request).wait()
    assert final.state is PullState.DONE, final.error
    commit = twin.repos[GEMMA].sha
    snapshot = cache_dir / f"models--{GEMMA.replace('/', '--')}" / "snapshots" / commit / GEMMA_FILE
    assert snapshot.is_symlink() and snapshot.resolve().parent.name == "blobs"
    assert snapshot.resolve().name == gemma[1]  # the blob is named by its sha256, as huggingface_hub does
    assert (snapshot.parents[2] / "refs" / "main").read_text() == commit
    # huggingface_hub (so huggingface-cli and llama-server -hf) finds the very same file
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(GEMMA, GEMMA_FILE, cache_dir=cache_dir) == str(snapshot)
    assert await downloads.cached(GEMMA, GEMMA_FILE) == snapshot  # and so does the app, with no network
    names = [info.path for info in (await library.scan()).infos]
    assert snapshot in names
    # progress: bytes grew, total known, and the last snapshot says done
    assert seen[-1].done and seen[-1].completed == seen[-1].total == request.quant.size
    assert any(0 < p.completed < p.total for p in seen)
    assert any(p.bytes_per_s > 0 and p.eta_s is not None for p in seen)  # speed and time left shown
    assert not list(cache_dir.rglob("*.incomplete"))


async def test_a_split_model_into_a_folder_of_the_users(twin, hub_http, cache_dir, tmp_path, model_files):
    folder = tmp_path / "my models"
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, SPLIT_PARTS[0], folder=folder)
    assert request.quant.is_split
    final = await downloads.start(request).wait()
    assert final.state is PullState.DONE, final.error
    assert set(final.layers) == set(SPLIT_PARTS)
    for name in SPLIT_PARTS:
        assert (folder / name).read_bytes() == model_files[name].read_bytes()
    infos = (await library.scan()).infos
    assert [info.parts for info in infos if info.path.parent == folder] == [tuple(folder / n for n in SPLIT_PARTS)]


async def test_several_downloads_at_once(twin, hub_http, cache_dir, tmp_path):
    downloads, _library, _seen = service(hub_http, cache_dir, tmp_path)
    requests = [await request_for(hub_http, SMALL, name) for name in ("small-Q8_0.gguf", "small-Q4_K_M.gguf")]
    jobs = [downloads.start(request) for request in requests]
    assert downloads.start(requests[0]) is jobs[0]  # the same download, not a second one
    finals = await asyncio.gather(*(job.wait() for job in jobs))
    assert [final.state for final in finals] == [PullState.DONE, PullState.DONE]


async def test_a_cut_download_resumes_where_it_stopped(twin, hub_http, cache_dir, tmp_path, model_files):
    downloads, _library, seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    size = request.quant.size
    twin.cut_after = size // 2
    final = await downloads.start(request).wait()
    assert final.state is PullState.DONE and final.attempt == 2, final.error
    ranges = [r.headers.get("range") for r in twin.requests if r.path.startswith("/cdn/")]
    assert ranges[0] is None and ranges[1] == f"bytes={size // 2}-"
    assert twin.body_bytes == size  # not one byte fetched twice
    assert any(p.state is PullState.RETRYING for p in seen)
    blob = cache_dir / f"models--{SMALL.replace('/', '--')}" / "blobs" / request.quant.parts[0].sha256
    assert blob.read_bytes() == model_files["small-Q8_0.gguf"].read_bytes()


async def test_a_download_resumes_after_a_restart(twin, hub_http, cache_dir, tmp_path, model_files):
    first, library, _seen = service(hub_http, cache_dir, tmp_path, retry_delays=())
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    twin.cut_after = 1_000_000
    failed = await first.start(request).wait()
    assert failed.state is PullState.FAILED and failed.error is not None
    assert listed(library) == []  # the partial file is not a model
    await first.aclose()
    again, library, _seen = service(hub_http, cache_dir, tmp_path)  # as after quitting
    assert await again.unfinished() == [request]
    final = await again.start(request).wait()
    assert final.state is PullState.DONE, final.error
    assert [r.headers.get("range") for r in twin.requests if r.path.startswith("/cdn/")][-1] == "bytes=1000000-"
    assert await again.unfinished() == []
    await again.aclose()


async def test_cancel_stops_and_leaves_nothing(twin, hub_http, cache_dir, tmp_path):
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    started = asyncio.Event()
    downloads.add_listener(lambda p: started.set() if p.completed > 0 else None)
    twin.cut_after = None
    job = downloads.start(request)
    await started.wait()
    final = await downloads.cancel(request.key)
    assert final is not None and final.state is PullState.CANCELLED
    assert list(cache_dir.rglob("*.incomplete")) == [] and listed(library) == []
    assert await downloads.unfinished() == []
    assert job.task is not None and job.task.done()


async def test_a_damaged_download_is_deleted_and_said(twin, hub_http, cache_dir, tmp_path):
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    twin.corrupt.add("small-Q8_0.gguf")
    final = await downloads.start(request).wait()
    assert final.state is PullState.FAILED and isinstance(final.error, DigestMismatch)
    one_sentence(final.error)
    assert left_behind(cache_dir) == [] and list(cache_dir.rglob("*.incomplete")) == []
    assert listed(library) == []


async def test_not_enough_space_is_said_before_anything_is_fetched(twin, hub_http, tmp_path, cache_dir):
    with small_disk(cache_dir, size_kib=1024):
        downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
        request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
        final = await downloads.start(request).wait()
        assert isinstance(final.error, NotEnoughSpace) and "needs" in final.error.message
        one_sentence(final.error)
        assert not [r for r in twin.requests if r.path.startswith("/cdn/")]
        assert listed(library) == []


async def test_a_disk_that_fills_up_mid_download_is_said_and_resumable(twin, hub_http, cache_dir, tmp_path):
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    with file_size_limit(2_000_000):  # writes past 2 MB fail, as on a full disk
        final = await downloads.start(request).wait()
    assert final.state is PullState.FAILED and isinstance(final.error, NotEnoughSpace)
    one_sentence(final.error)
    assert listed(library) == [] and left_behind(cache_dir) == []
    assert await downloads.unfinished() == [request]
    again = await downloads.start(request).wait()  # room again: it resumes
    assert again.state is PullState.DONE, again.error


async def test_a_gated_repo_without_a_token_fails_clearly_and_leaves_nothing(twin, hub_http, cache_dir, tmp_path):
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, GATED, "small-Q8_0.gguf")
    final = await downloads.start(request).wait()
    assert isinstance(final.error, GatedRepo)
    one_sentence(final.error)
    assert not [path for path in cache_dir.rglob("*") if path.is_file()] and listed(library) == []
    assert await downloads.unfinished() == []  # nothing to resume from
    with_token, _library, _seen = service(hub_http, cache_dir, tmp_path, token=TOKEN)
    assert (await with_token.start(request).wait()).state is PullState.DONE
    assert all(TOKEN not in r.path for r in twin.requests)


async def test_a_file_gone_from_the_repo_fails_clearly(twin, hub_http, cache_dir, tmp_path):
    downloads, library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    twin.repos[SMALL].files.pop("small-Q8_0.gguf")
    final = await downloads.start(request).wait()
    assert isinstance(final.error, HubNotFound)
    one_sentence(final.error)
    assert not [path for path in cache_dir.rglob("*") if path.is_file()] and listed(library) == []


def one_sentence(error: DomainError) -> None:
    assert error.message.endswith(".") and ". " not in error.message, error.message
    assert error.action


async def test_a_blob_already_in_the_cache_is_linked_not_fetched(twin, hub_http, cache_dir, tmp_path):
    downloads, _library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    assert (await downloads.start(request).wait()).state is PullState.DONE
    twin.repos[SMALL].sha = "f" * 40  # a new commit with the same file
    again = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    twin.reset()
    assert (await downloads.start(again).wait()).state is PullState.DONE
    assert not [r for r in twin.requests if r.path.startswith("/cdn/")]
    snapshot = cache_dir / f"models--{SMALL.replace('/', '--')}" / "snapshots" / ("f" * 40) / "small-Q8_0.gguf"
    assert snapshot.resolve().name == request.quant.parts[0].sha256


async def test_a_different_file_of_the_same_name_in_the_folder_is_not_overwritten(twin, hub_http, cache_dir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "small-Q8_0.gguf").write_bytes(b"my own file")
    downloads, _library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf", folder=folder)
    final = await downloads.start(request).wait()
    assert final.state is PullState.FAILED and "already" in final.error.message
    one_sentence(final.error)
    assert (folder / "small-Q8_0.gguf").read_bytes() == b"my own file"


async def test_a_name_that_would_leave_the_cache_is_refused(twin, hub_http, cache_dir, tmp_path):
    downloads, _library, _seen = service(hub_http, cache_dir, tmp_path)
    request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
    escaping = replace(
        request, quant=replace(request.quant, parts=(replace(request.quant.parts[0], path="../../x.gguf"),))
    )
    for bad in (escaping, replace(request, commit="../../../tmp")):
        final = await downloads.start(bad).wait()
        assert final.state is PullState.FAILED and "will not write" in final.error.message
        one_sentence(final.error)
    assert not list(tmp_path.rglob("x.gguf")) and not [r for r in twin.requests if r.path.startswith("/cdn/")]


async def test_a_blob_already_there_needs_no_free_space(twin, hub_http, tmp_path, cache_dir):
    with small_disk(cache_dir, size_kib=4096):  # room for the 3 MB file once, not twice
        downloads, _library, _seen = service(hub_http, cache_dir, tmp_path)
        request = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
        assert (await downloads.start(request).wait()).state is PullState.DONE
        twin.repos[SMALL].sha = "e" * 40
        again = await request_for(hub_http, SMALL, "small-Q8_0.gguf")
        final = await downloads.start(again).wait()
        assert final.state is PullState.DONE, final.error
