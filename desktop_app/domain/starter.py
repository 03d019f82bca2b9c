"""The models the first-run offer ("Chat with a local model now") proposes, and the one for this machine.

A short list, smallest first, of instruction-tuned GGUF files on Hugging Face that need no token,
each with the header numbers its KV cache depends on, so the fit check needs no download. The
pick is the largest entry that fits with room to spare and that this machine answers with quickly:
on a GPU the one that fits its memory, on a CPU alone one whose weights its cores get through fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.domain.hub import Fit, FitVerdict, HardwareInfo, ModelShape, estimate_memory, fit_verdict, gb

STARTER_CONTEXT = 4096  # the context the offer starts the model with (llama.cpp pane's default)
CPU_BYTES_PER_CORE = 250 * 10**6  # on a CPU alone: weights per core that still answer at reading speed


@dataclass(frozen=True, slots=True)
class StarterModel:
    repo: str  # "owner/name" on Hugging Face
    file: str  # the .gguf file in it
    size: int  # bytes, as the Hub lists the file
    description: str  # one line, for the offer
    shape: ModelShape  # from the file's GGUF header

    @property
    def name(self) -> str:
        """ "Gemma 3 270M" (the description's words before the colon)."""
        return self.description.split(":", 1)[0]

    @property
    def size_text(self) -> str:
        return f"{max(1, round(self.size / 1e6))} MB" if self.size < 1e9 else gb(self.size)


STARTER_MODELS: tuple[StarterModel, ...] = (
    StarterModel(
        "unsloth/gemma-3-270m-it-GGUF",
        "gemma-3-270m-it-Q4_K_M.gguf",
        253_113_024,
        "Gemma 3 270M: Google's smallest chat model; quick on any computer, good for short answers.",
        ModelShape(layers=18, kv_heads=1, key_length=256, value_length=256, context_length=32768),
    ),
    StarterModel(
        "unsloth/gemma-3-1b-it-GGUF",
        "gemma-3-1b-it-Q4_K_M.gguf",
        806_058_240,
        "Gemma 3 1B: Google's small chat model; writes and summarises well for its size.",
        ModelShape(layers=26, kv_heads=1, key_length=256, value_length=256, context_length=32768),
    ),
    StarterModel(
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        1_117_320_736,
        "Qwen 2.5 1.5B: Alibaba's small chat model; many languages, some code.",
        ModelShape(layers=28, kv_heads=2, key_length=128, value_length=128, context_length=32768),
    ),
    StarterModel(
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        2_019_377_696,
        "Llama 3.2 3B: Meta's compact chat model; a good all-rounder.",
        ModelShape(layers=28, kv_heads=8, key_length=128, value_length=128, context_length=131072),
    ),
    StarterModel(
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        4_683_073_856,
        "Qwen 2.5 7B: Alibaba's mid-sized chat model; strong at reasoning and code.",
        ModelShape(layers=28, kv_heads=4, key_length=128, value_length=128, context_length=32768),
    ),
)


@dataclass(frozen=True, slots=True)
class StarterPick:
    model: StarterModel
    verdict: FitVerdict


def pick_starter(
    hardware: HardwareInfo, models: tuple[StarterModel, ...] = STARTER_MODELS, context: int = STARTER_CONTEXT
) -> StarterPick | None:
    """The largest entry that fits in half of what is free (the rest stays the user's) and, on a
    CPU alone, whose weights the cores get through quickly; the smallest if only it fits; None
    when not even that fits."""
    picked: StarterPick | None = None
    for model in sorted(models, key=lambda m: m.size):
        estimate = estimate_memory(model.size, model.shape, context)
        verdict = fit_verdict(estimate, hardware, context)
        if verdict.fit is Fit.TOO_BIG:
            break
        if picked is None:
            picked = StarterPick(model, verdict)
            continue
        gpu = hardware.best_gpu
        if verdict.fit is Fit.GPU and gpu is not None:
            room = hardware.ram_available if gpu.unified else (gpu.vram_free or gpu.vram_total)
            roomy = estimate.total * 2 <= room
        else:
            roomy = estimate.total * 2 <= hardware.ram_available and model.size <= CPU_BYTES_PER_CORE * max(
                1, hardware.cpu_cores
            )
        if not roomy:
            break
        picked = StarterPick(model, verdict)
    return picked
