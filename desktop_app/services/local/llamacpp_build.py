"""Building llama-server from a llama.cpp release's source, where no prebuilt build fits.

The recipe is the one scripts/provision_test_servers.py builds the test server with (`CMAKE_FLAGS`;
tests/unit/test_llamacpp_build.py keeps the two in step): `cmake -S <src> -B <build> <flags>`, then
`cmake --build <build> --target llama-server`. The source is the release's `tarball_url`
(GitHub's archive of the tag: one top folder). Each line cmake prints goes to the log listeners as
it comes; cancelling kills the build's whole process group. The result is installed like a
prebuilt one (`EngineInstaller.put_in_place`: `--version` runs before it is put in place).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from desktop_app.domain.engine import EngineError, Release
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.local.llamacpp_install import EngineInstaller, InstalledEngine, binary_file_name

log = logging.getLogger(__name__)

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
)
COMPILERS = ("c++", "g++", "clang++", "cl")


def build_tools(path: str | None = None) -> tuple[str, str] | None:
    """(cmake, a C++ compiler) found on PATH, or None: then "Build from source" is not offered."""
    cmake = shutil.which("cmake", path=path)
    compiler = next((found for name in COMPILERS if (found := shutil.which(name, path=path))), None)
    return (cmake, compiler) if cmake and compiler else None


class SourceBuilder:
    """One build at a time: `build(release)` downloads, configures, compiles and installs."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        engines: EngineInstaller,
        *,
        jobs: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._client, self._engines = client, engines
        self._jobs = jobs or os.cpu_count() or 2
        self._environ = dict(os.environ if environ is None else environ)
        self._log: Listeners[[str]] = Listeners("llama.cpp build log")
        self.lines: list[str] = []

    def add_log_listener(self, listener: Callable[[str], None]) -> Unsubscribe:
        return self._log.subscribe(listener)

    async def build(self, release: Release) -> InstalledEngine:
        """Build `release`'s llama-server and install it; EngineError (one sentence) when it fails."""
        tools = build_tools(self._environ.get("PATH"))
        if tools is None:
            raise EngineError(
                "Building llama.cpp needs CMake and a C++ compiler, and they are not on PATH.",
                "Install them (e.g. cmake and g++), or set the path of a llama-server you have.",
            )
        if not release.source_url:
            raise EngineError(f"llama.cpp {release.tag} offers no source archive.", "Try another release.")
        await asyncio.to_thread(self._engines.root.mkdir, parents=True, exist_ok=True)
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".build-{release.tag}-", dir=self._engines.root))
        try:
            source = await self._fetch_source(release, work)
            build = work / "build"
            await self._run([tools[0], "-S", str(source), "-B", str(build), *CMAKE_FLAGS], "configuring")
            await self._run(
                [
                    tools[0],
                    "--build",
                    str(build),
                    "--config",
                    "Release",
                    "--target",
                    "llama-server",
                    "-j",
                    str(self._jobs),
                ],
                "compiling",
            )
            built = next((p for p in build.rglob(binary_file_name()) if p.is_file()), None)
            return await self._engines.put_in_place(
                release.tag, "source", f"llama.cpp {release.tag} source", lambda staging: _copy_binary(built, staging)
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def _fetch_source(self, release: Release, work: Path) -> Path:
        archive = work / "source.tar.gz"
        try:
            async with self._client.stream("GET", release.source_url, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise EngineError(
                        f"The source of llama.cpp {release.tag} could not be downloaded (HTTP {response.status_code}).",
                        "Try again later.",
                    )
                with archive.open("wb") as file:
                    async for chunk in response.aiter_bytes(1 << 20):
                        file.write(chunk)
        except httpx.HTTPError:
            raise EngineError(
                f"The source of llama.cpp {release.tag} could not be downloaded.", "Check the connection and try again."
            ) from None
        except OSError as exc:
            raise EngineError(
                f"Saving the llama.cpp source failed ({exc.strerror or exc}).", "Free some space."
            ) from None
        try:
            return await asyncio.to_thread(_extract_source, archive, work / "src")
        except (OSError, tarfile.TarError):
            raise EngineError(f"The source archive of llama.cpp {release.tag} is damaged.", "Try again.") from None

    async def _run(self, command: list[str], step: str) -> None:
        self._say(f"$ {' '.join(command)}")
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._environ,
            start_new_session=sys.platform != "win32",  # its own group: cancel stops the compilers too
        )
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                self._say(raw.decode("utf-8", "replace").rstrip())
            code = await process.wait()
        except asyncio.CancelledError:
            _kill_group(process)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
            self._say("Build cancelled.")
            raise
        if code != 0:
            last = next((line for line in reversed(self.lines) if line.strip() and not line.startswith("$")), "")
            raise EngineError(
                f"Building llama.cpp failed while {step} (exit code {code}).",
                f"The build log says why{': ' + last[:160] if last else ''}.",
            )

    def _say(self, line: str) -> None:
        self.lines.append(line)
        self._log.emit(line)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)


def _extract_source(archive: Path, into: Path) -> Path:
    """Unpack GitHub's tag archive (members outside `into` refused); the one top folder."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as bundle:
        for member in bundle.getmembers():
            target = (into / member.name).resolve()
            if (into.resolve() not in target.parents and target != into.resolve()) or member.islnk() or member.isdev():
                raise OSError(f"unsafe member {member.name!r}")
        if hasattr(tarfile, "tar_filter"):  # Python 3.11.4 and later
            bundle.extractall(into, filter="tar")
        else:
            bundle.extractall(into)
    tops = [p for p in into.iterdir() if p.is_dir()]
    return tops[0] if len(tops) == 1 else into


def _copy_binary(built: Path | None, staging: Path) -> Path | None:
    """The built llama-server and what sits beside it (shared libraries) into `staging`."""
    if built is None:
        return None
    for item in built.parent.iterdir():
        if item.is_file():
            shutil.copy2(item, staging / item.name)
    return staging / built.name
