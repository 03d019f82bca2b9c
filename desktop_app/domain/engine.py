"""The local engine (llama-server) that ModelDesk installs: llama.cpp releases, their builds, the one to pick.

llama.cpp publishes each build number as a GitHub release (tag "b<N>") whose assets are named
`llama-<tag>-bin-<os>[-<backend>]-<arch>.<zip|tar.gz>`: "ubuntu-x64", "ubuntu-vulkan-x64",
"macos-arm64" (Metal built in), "win-cpu-x64", "win-cuda-12.4-x64"... `parse_asset` reads that
name, `pick_build` chooses the one for this machine and lists the others the user may take instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from desktop_app.domain.errors import DomainError, domain_error

_ASSET = re.compile(
    r"^llama-(?P<tag>[^-]+)-bin-(?P<os>ubuntu|linux|macos|win)-(?:(?P<backend>[a-z]+(?:-[\d.]+)?)-)?"
    r"(?P<arch>x64|arm64)\.(?P<ext>zip|tar\.gz)$"
)
_RUNTIME = re.compile(
    r"^cudart-llama-bin-(?P<os>ubuntu|linux|macos|win)-(?P<backend>cuda-[\d.]+)-(?P<arch>x64|arm64)\.(?:zip|tar\.gz)$"
)
_OS = {"ubuntu": "linux", "linux": "linux", "macos": "macos", "win": "windows"}
_VERSION = re.compile(r"version:\s*(?P<number>\d+)\s*\((?P<commit>[0-9a-f]+)\)|version:\s*(?P<raw>.+)", re.IGNORECASE)
_BUILT = re.compile(r"built with (?P<with>.+)", re.IGNORECASE)


# --- errors ----------------------------------------------------------------------------------


@domain_error
class EngineError(DomainError):
    """Finding, downloading or installing llama.cpp failed, said in one sentence."""


@domain_error
class NoBuildForPlatform(EngineError):
    """The release has no build for this OS and CPU."""


@domain_error
class EngineDigestMismatch(EngineError):
    """The archive does not have the SHA-256 the release publishes."""


@domain_error
class EngineDiskFull(EngineError):
    """The disk is (or became) too full for the archive or its contents."""


@domain_error
class BrokenEngine(EngineError):
    """The archive holds no llama-server, or the one it holds does not run."""


# --- releases ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseAsset:
    """One downloadable file of a release, as GitHub's release API lists it."""

    name: str
    size: int
    url: str  # browser_download_url
    sha256: str = ""  # from `digest` ("sha256:<hex>"); empty for releases older than June 2025
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Release:
    tag: str
    assets: tuple[ReleaseAsset, ...]
    published_at: str = ""
    prerelease: bool = False
    source_url: str = ""  # tarball_url: the source at this tag, for a build from source

    @property
    def number(self) -> int:
        return build_number(self.tag)


def size_text(size: int) -> str:
    """ "512 MB", "1.2 GB": a download's size as the install offer shows it."""
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{max(1, round(size / 1e6))} MB"


def build_number(tag: str) -> int:
    """ "b6123" -> 6123 (0 for a tag of another shape), so releases compare by build."""
    match = re.fullmatch(r"b?(\d+)", tag.strip())
    return int(match[1]) if match else 0


@dataclass(frozen=True, slots=True)
class Build:
    """A release asset read as a build: its OS, CPU architecture and backend."""

    asset: ReleaseAsset
    os: str  # "linux" | "macos" | "windows"
    arch: str  # "x64" | "arm64"
    backend: str  # "cpu", "vulkan", "metal", "cuda-12.4", "hip", ...
    runtime: ReleaseAsset | None = None  # the CUDA runtime (cudart-...) unpacked beside a CUDA build

    @property
    def size(self) -> int:
        return self.asset.size + (self.runtime.size if self.runtime is not None else 0)

    @property
    def label(self) -> str:
        backend = self.backend.replace("cuda-", "CUDA ").replace("vulkan", "Vulkan").replace("metal", "Metal")
        runtime = " with its CUDA runtime" if self.runtime is not None else ""
        return f"{backend.upper() if backend == 'cpu' else backend} · {self.os} {self.arch}{runtime}"


def parse_asset(asset: ReleaseAsset) -> Build | None:
    """The build `asset` holds, or None for what is not a llama.cpp build (cudart, xcframework...)."""
    match = _ASSET.match(asset.name)
    if match is None:
        return None
    os_name = _OS[match["os"]]
    backend = match["backend"] or ("metal" if os_name == "macos" and match["arch"] == "arm64" else "cpu")
    return Build(asset, os_name, match["arch"], backend)


@dataclass(frozen=True, slots=True)
class Platform:
    """This machine as the builds see it; `gpus` are the GPU vendors found ("nvidia", "amd", "vulkan")."""

    os: str
    arch: str
    gpus: tuple[str, ...] = ()


def _rank(build: Build, platform: Platform) -> int:
    """Higher is better for this machine; the CPU build always runs."""
    if build.backend.startswith("cuda"):
        return 3 if "nvidia" in platform.gpus else -1
    if build.backend == "metal":
        return 3
    if build.backend == "vulkan":
        return 2 if platform.gpus else -1
    if build.backend == "cpu":
        return 1
    return -1  # hip, sycl, openvino...: only when the user picks them


def pick_build(release: Release, platform: Platform) -> tuple[Build, list[Build]]:
    """The build to install on `platform` and the others for it (OS and arch match), best first.

    NoBuildForPlatform when the release offers nothing for this OS and CPU.
    """
    builds = [b for b in (parse_asset(a) for a in release.assets) if b is not None]
    fitting = [_with_runtime(b, release) for b in builds if b.os == platform.os and b.arch == platform.arch]
    # newest CUDA first among equals
    fitting.sort(key=lambda b: (_rank(b, platform), b.backend), reverse=True)
    if not fitting or _rank(fitting[0], platform) < 0:
        raise NoBuildForPlatform(
            f"llama.cpp {release.tag} has no prebuilt llama-server for {platform.os} on {platform.arch}.",
            "Build it from source, or set the path of a llama-server you have.",
        )
    return fitting[0], fitting[1:]


def _with_runtime(build: Build, release: Release) -> Build:
    """A CUDA build with the release's CUDA runtime for the same OS, CUDA version and arch (the
    Windows CUDA builds need it beside llama-server)."""
    if not build.backend.startswith("cuda"):
        return build
    for asset in release.assets:
        match = _RUNTIME.match(asset.name)
        if match and (_OS[match["os"]], match["backend"], match["arch"]) == (build.os, build.backend, build.arch):
            return replace(build, runtime=asset)
    return build


# --- what --version says -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineVersion:
    """`llama-server --version`: "version: 6123 (abc1234)" and "built with <compiler> for <target>"."""

    version: str
    commit: str = ""
    built_with: str = ""

    @property
    def text(self) -> str:
        commit = f" ({self.commit})" if self.commit else ""
        what = "build" if self.version.isdigit() else "version"
        return f"{what} {self.version}{commit}" + (f", {self.built_with}" if self.built_with else "")


def parse_version(output: str) -> EngineVersion | None:
    version = commit = built = ""
    for line in output.splitlines():
        if not version and (match := _VERSION.search(line)):
            version = match["number"] or (match["raw"] or "").strip()
            commit = match["commit"] or ""
        elif not built and (match := _BUILT.search(line)):
            built = match["with"].strip()
    return EngineVersion(version, commit, built) if version else None


@dataclass(frozen=True, slots=True)
class EngineInUse:
    """The llama-server the app would run, and where it came from."""

    path: str
    source: str  # "setting" | "path" | "installed"
    version: EngineVersion | None = None
    tag: str = ""  # the release tag, for one the app installed
