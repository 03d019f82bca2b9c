"""Models from Hugging Face: repos, their GGUF files, this machine's hardware, and whether a file fits.

`HubRepo` is one search hit or one repo's details; `QuantFile` is one quantisation of a model as
the user picks it, its parts grouped when the file is split (`name-00001-of-00003.gguf` ...).
`HardwareInfo` is what `services/local/hardware.py` found; `estimate_memory` and `fit_verdict`
turn a file size and a `ModelShape` (from the GGUF header) into a `FitVerdict` with its numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from desktop_app.domain.errors import DomainError, domain_error

# one part of a split model, as llama.cpp's gguf-split names it
_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# The quantisation as GGUF repos name their files: "...-Q4_K_M.gguf", "...IQ2_XXS...", "...f16..."
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ\d_\d)(?![A-Za-z0-9])", re.IGNORECASE
)


class HubSort(StrEnum):
    """How a search orders its hits (the Hub's `sort` values, always descending)."""

    DOWNLOADS = "downloads"
    LIKES = "likes"
    RECENT = "lastModified"


# --- errors ----------------------------------------------------------------------------------


@domain_error
class HubError(DomainError):
    """A Hugging Face request or download that failed, said in one sentence."""


@domain_error
class GatedRepo(HubError):
    """The repo asks for accepted terms or a token this account does not have."""


@domain_error
class HubNotFound(HubError):
    """No such repo or file (or a private one the token cannot see)."""


@domain_error
class NotEnoughSpace(HubError):
    """The disk is (or became) too full for the download."""


@domain_error
class DigestMismatch(HubError):
    """The downloaded bytes do not have the SHA-256 the Hub publishes."""


# --- repos and files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubRepo:
    """A model repo on the Hub. `gated` is False, "auto" or "manual" as the Hub says it."""

    id: str  # "owner/name"
    downloads: int = 0
    likes: int = 0
    last_modified: str = ""  # ISO 8601 as the Hub sends it
    gated: bool | str = False
    private: bool = False
    license: str = ""  # e.g. "apache-2.0"; "" when the repo does not say
    sha: str = ""  # the commit the details were read at

    @property
    def is_gated(self) -> bool:
        return bool(self.gated)


@dataclass(frozen=True, slots=True)
class HubFile:
    """One file of a repo's tree. `sha256` is the LFS digest the Hub publishes ("" if not LFS)."""

    path: str
    size: int
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class QuantFile:
    """One downloadable model: a single .gguf, or every part of a split one, in order."""

    name: str  # the file name, or for a split model the first part's name
    quantisation: str  # "Q4_K_M"; "" when the name does not say
    parts: tuple[HubFile, ...]

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1


def quantisation_from_name(name: str) -> str:
    """ "Q4_K_M" from "gemma-3-1b-it-Q4_K_M.gguf"; "" when the name does not say."""
    stem = name.rsplit("/", 1)[-1]
    match = _SPLIT.match(stem)
    stem = match["prefix"] if match else stem.removesuffix(".gguf")
    found = _QUANT.findall(stem)
    return found[-1].upper() if found else ""


def group_quant_files(files: Iterable[HubFile]) -> list[QuantFile]:
    """The repo's .gguf files as models: split parts folded into one, incomplete splits left out.

    Multimodal projectors (`mmproj-*.gguf`) are kept: they are files a user may want too.
    """
    singles: list[QuantFile] = []
    splits: dict[tuple[str, int], dict[int, HubFile]] = {}
    for file in files:
        if not file.path.lower().endswith(".gguf"):
            continue
        match = _SPLIT.match(file.path)
        if match is None:
            singles.append(QuantFile(file.path, quantisation_from_name(file.path), (file,)))
            continue
        splits.setdefault((match["prefix"], int(match["count"])), {})[int(match["number"])] = file
    for (_prefix, count), parts in splits.items():
        if sorted(parts) != list(range(1, count + 1)):
            continue  # a part is missing from the repo: it could not load
        ordered = tuple(parts[number] for number in range(1, count + 1))
        singles.append(QuantFile(ordered[0].path, quantisation_from_name(ordered[0].path), ordered))
    singles.sort(key=lambda quant: (quant.size, quant.name))
    return singles


# --- this machine ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU; `unified` for Apple silicon, whose GPU shares the RAM."""

    name: str
    vram_total: int  # bytes
    vram_free: int | None = None  # bytes, when the tool says
    vendor: str = ""  # "nvidia", "amd", "apple", "vulkan"
    unified: bool = False


@dataclass(frozen=True, slots=True)
class HardwareInfo:
    """What the Hardware box shows; `notes` say which tools were missing or failed (never fatal)."""

    ram_total: int  # bytes
    ram_available: int  # bytes
    cpu_name: str
    cpu_cores: int
    gpus: tuple[GpuInfo, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def best_gpu(self) -> GpuInfo | None:
        return max(self.gpus, key=lambda gpu: gpu.vram_free or gpu.vram_total, default=None)


# --- will it fit -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The header numbers the KV cache depends on (`<arch>.block_count` and the attention keys)."""

    layers: int
    kv_heads: int
    key_length: int  # per head
    value_length: int  # per head
    context_length: int | None = None  # what the model was trained for

    def kv_cache_bytes(self, context: int, bytes_per_element: int = 2) -> int:
        """Keys and values of every layer for `context` tokens (f16 cache: 2 bytes an element)."""
        return self.layers * context * self.kv_heads * (self.key_length + self.value_length) * bytes_per_element


def shape_from_metadata(architecture: str, numbers: dict[str, int]) -> ModelShape | None:
    """A `ModelShape` from the header's integer keys, or None when the block count is missing.

    Without `attention.head_count_kv` the model has no grouped-query attention (as many KV heads
    as heads); without `attention.key_length` a head is `embedding_length / head_count` wide.
    """
    prefix = f"{architecture}."
    layers = numbers.get(prefix + "block_count")
    heads = numbers.get(prefix + "attention.head_count")
    if not layers or not heads:
        return None
    kv_heads = numbers.get(prefix + "attention.head_count_kv") or heads
    width = numbers.get(prefix + "embedding_length", 0) // heads
    key_length = numbers.get(prefix + "attention.key_length") or width
    value_length = numbers.get(prefix + "attention.value_length") or key_length
    if not key_length:
        return None
    return ModelShape(layers, kv_heads, key_length, value_length, numbers.get(prefix + "context_length"))


# llama.cpp's compute buffers (the graph's scratch: logits, activations, one batch of 512 tokens)
# plus the CUDA/Vulkan context come to a few hundred MB on small and mid-sized models; 512 MiB
# is a safe middle, and it keeps a file that fills VRAM to the last byte from being called a fit.
OVERHEAD_BYTES = 512 * 1024**2


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    overhead: int = OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead


class Fit(StrEnum):
    GPU = "gpu"
    CPU = "cpu"
    TOO_BIG = "too_big"


@dataclass(frozen=True, slots=True)
class FitVerdict:
    fit: Fit
    estimate: MemoryEstimate
    context: int
    text: str  # "Fits on the GPU: 2.1 GB of 8.0 GB VRAM at 8,192 tokens"


def estimate_memory(size: int, shape: ModelShape | None, context: int) -> MemoryEstimate:
    """Weights (the file size, all parts) + the f16 KV cache at `context` tokens + the overhead."""
    return MemoryEstimate(size, shape.kv_cache_bytes(context) if shape is not None else 0)


def gb(size: float) -> str:
    """Bytes as "2.1 GB" (decimal, the unit the Hub and disk tools show)."""
    value = size / 1e9
    return f"{value:.1f} GB" if value < 100 else f"{value:,.0f} GB"


def fit_verdict(estimate: MemoryEstimate, hardware: HardwareInfo, context: int) -> FitVerdict:
    """Where the model would run: the GPU with the most memory, else the CPU's RAM, else too big."""
    need = estimate.total
    at = f"at {context:,} tokens"
    gpu = hardware.best_gpu
    if gpu is not None and not gpu.unified:
        room = gpu.vram_free if gpu.vram_free is not None else gpu.vram_total
        if need <= room:
            text = f"Fits on the GPU: {gb(need)} of {gb(room)} VRAM {at}."
            return FitVerdict(Fit.GPU, estimate, context, text)
    if gpu is not None and gpu.unified and need <= hardware.ram_available:
        # Apple silicon: the GPU runs it from the same memory.
        text = f"Fits on the GPU: {gb(need)} of {gb(hardware.ram_available)} unified memory free {at}."
        return FitVerdict(Fit.GPU, estimate, context, text)
    if need <= hardware.ram_available:
        text = f"Runs on the CPU: {gb(need)} of {gb(hardware.ram_available)} RAM free {at}."
        return FitVerdict(Fit.CPU, estimate, context, text)
    biggest = max([hardware.ram_total, *(g.vram_total for g in hardware.gpus)])
    text = f"Too big: needs {gb(need)} {at}, this machine has {gb(biggest)}."
    if need <= hardware.ram_total:
        text = f"Too big for now: needs {gb(need)} {at}, {gb(hardware.ram_available)} of RAM is free."
    return FitVerdict(Fit.TOO_BIG, estimate, context, text)


def fit_all(
    quants: Sequence[QuantFile], shape: ModelShape | None, hardware: HardwareInfo, context: int
) -> list[FitVerdict]:
    """One verdict per file (the files of a repo share one shape: read one header, judge them all)."""
    return [fit_verdict(estimate_memory(quant.size, shape, context), hardware, context) for quant in quants]
