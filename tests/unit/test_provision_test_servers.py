"""scripts/provision_test_servers.py: unpacking the llama.cpp source archive on every supported Python
(tarfile's ``filter="data"`` is missing before 3.11.4, which Debian 12 ships), refusing members that
would land outside the folder."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "provision_test_servers.py"


def _script():
    spec = importlib.util.spec_from_file_location("provision_test_servers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _archive(path: Path, *members: tuple[str, bytes | str]) -> Path:
    """A .tar.gz of files (bytes) and symlinks (str: the link's target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_unpacks_files_and_inner_links(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "src.tar.gz",
        ("pkg-1.0/vendor/llama.cpp/CMakeLists.txt", b"project(llama)\n"),
        ("pkg-1.0/vendor/llama.cpp/latest", "CMakeLists.txt"),
    )
    dest = tmp_path / "out"
    dest.mkdir()
    _script().extract_archive(archive, dest)
    unpacked = dest / "pkg-1.0" / "vendor" / "llama.cpp"
    assert (unpacked / "CMakeLists.txt").read_bytes() == b"project(llama)\n"
    assert (unpacked / "latest").read_bytes() == b"project(llama)\n"


@pytest.mark.parametrize(
    "members",
    [
        [("../escaped.txt", b"x")],
        [("/tmp/escaped.txt", b"x")],
        [("pkg/up", "../../escaped.txt")],
        [("pkg/out", ".."), ("pkg/out/escaped.txt", b"x")],
    ],
    ids=["dot-dot", "absolute", "link-out", "through-link"],
)
def test_refuses_members_outside_the_folder(tmp_path: Path, members: list[tuple[str, bytes | str]]) -> None:
    archive = _archive(tmp_path / "bad.tar.gz", *members)
    dest = tmp_path / "a" / "out"
    dest.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"bad\.tar\.gz"):
        _script().extract_archive(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "a" / "escaped.txt").exists()
