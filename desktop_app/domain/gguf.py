"""What ModelDesk knows about a GGUF model file on disk, read from its header alone.

`GgufInfo` is one model: a single file, or every part of a split model (`name-00001-of-00003.gguf`
...) folded into one entry. `GgufProblem` is a file that could not be read, with the reason in one
sentence. The names of `general.file_type` values follow llama.cpp's `LlamaFileType` (llama.h's
`llama_ftype`) minus the `MOSTLY_` prefix, so a model shows as "Q4_K_M" the way its file name and
the llama.cpp tools say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

UNKNOWN = "unknown"

# general.file_type -> name. Gaps (5, 6) were removed from llama.cpp before GGUF existed.
FILE_TYPE_NAMES: Mapping[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    33: "Q4_0_4_4",  # 33-35: dropped from newer files (repacked at load time), still found on disk
    34: "Q4_0_4_8",
    35: "Q4_0_8_8",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}
FILE_TYPE_GUESSED = 1024  # "not specified in the model file": the tensor types decide instead

# ggml tensor types (ggml_type), for naming the most common one when general.file_type is missing.
TENSOR_TYPE_NAMES: Mapping[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
}


def quantisation_name(file_type: int | None, tensor_elements: Mapping[int, int] | None = None) -> str:
    """ "Q4_K_M" for file type 15; otherwise the tensor type holding the most weights, else "unknown".

    `tensor_elements` maps a ggml tensor type to the number of weights stored in it.
    """
    if file_type is not None and file_type in FILE_TYPE_NAMES:
        return FILE_TYPE_NAMES[file_type]
    if tensor_elements:
        most = max(tensor_elements.items(), key=lambda item: item[1])[0]
        return TENSOR_TYPE_NAMES.get(most, UNKNOWN)
    return UNKNOWN


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """One model as its GGUF header describes it; nothing here needed the tensors themselves.

    For a split model `path` is the first part, `size` the sum of all parts, `mtime` the newest
    part's, `parameter_count` the weights of all parts, and `parts` every part in order.
    """

    path: Path
    size: int  # bytes
    mtime: float  # seconds since the epoch
    architecture: str  # general.architecture, e.g. "gemma3"; "unknown" when absent
    name: str  # general.name, else the file name without ".gguf" (and without a split suffix)
    quantisation: str  # e.g. "Q4_K_M"; "unknown" when neither the file type nor the tensors say
    parameter_count: int | None = None  # weights counted from the tensor list; None if it has none
    context_length: int | None = None  # <architecture>.context_length, the trained context
    has_chat_template: bool = False  # tokenizer.chat_template is present and not empty
    split_index: int = 0  # split.no: 0 for the first part (and for a file that is not split)
    split_count: int = 1  # split.count, or how many parts were grouped
    parts: tuple[Path, ...] = field(default=())

    @property
    def is_split(self) -> bool:
        return self.split_count > 1


@dataclass(frozen=True, slots=True)
class GgufProblem:
    """A .gguf file ModelDesk could not use, and why, in one sentence."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class ScanResult:
    infos: tuple[GgufInfo, ...] = ()
    problems: tuple[GgufProblem, ...] = ()
