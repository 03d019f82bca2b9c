"""Fixtures for the engine install tests (loaded with `pytest_plugins`): archives packed like the
official llama.cpp release assets from the llama-server `make test` builds, and the loopback release twin
of GitHub's release API serving them, with MODELDESK_LLAMACPP_RELEASES_URL pointed at it."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.services.local.llamacpp_install import RELEASES_ENV
from tests.servers.llama import real_artifacts
from tests.servers.llamacpp_releases import LlamaCppReleasesTwin
from tests.unit.engine_archives import NEWER, TAG, tar_archive


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """The test llama-server's bin/ (and lib/, when the build has one) packed like the official assets."""
    binary = real_artifacts()[0]
    build = binary.parent.parent
    files: dict[str, Path | bytes] = {p.name: p for p in sorted((build / "bin").iterdir()) if p.is_file()}
    if (build / "lib").is_dir():
        files.update({p.name: p for p in sorted((build / "lib").iterdir()) if p.is_file()})
    files["LICENSE"] = b"MIT License\n"
    folder = tmp_path_factory.mktemp("releases")
    found = {
        "real": tar_archive(folder / "real.tar.gz", f"llama-{TAG}", files),
        "empty": tar_archive(folder / "empty.tar.gz", f"llama-{NEWER}", {"LICENSE": b"MIT License\n"}),
    }
    with zipfile.ZipFile(folder / "real.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for name, source in files.items():
            if isinstance(source, Path):
                bundle.write(source, name)
            else:
                bundle.writestr(name, source)
    found["zip"] = folder / "real.zip"
    return found


@pytest.fixture
def release_twin(archives, monkeypatch) -> Iterator[LlamaCppReleasesTwin]:
    server = LlamaCppReleasesTwin()
    release = server.release(TAG)
    server.add(release, f"llama-{TAG}-bin-ubuntu-x64.tar.gz", archives["real"])
    server.add(release, f"llama-{TAG}-bin-ubuntu-vulkan-x64.tar.gz", archives["real"])
    server.add(release, f"llama-{TAG}-bin-macos-arm64.tar.gz", archives["real"])
    server.add(release, f"llama-{TAG}-bin-win-cuda-12.4-x64.zip", archives["zip"])
    server.add(release, "cudart-llama-bin-win-cuda-12.4-x64.zip", archives["zip"])
    server.start()
    monkeypatch.setenv(RELEASES_ENV, server.api_url)
    yield server
    server.stop()
