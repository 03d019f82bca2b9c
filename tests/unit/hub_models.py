"""What the Hugging Face tests serve and how they reach it: repo names, the real test GGUF, small
GGUF files with random weights, and a HubClient on `HF_ENDPOINT` (the fixtures are in hub_twin)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from desktop_app.domain.starter import STARTER_MODELS
from desktop_app.services.local.hf_hub import HubClient
from tests.servers.process import from_env_file
from tests.unit.gguf_files import STR, U32, Tensor, write_gguf

GEMMA, GEMMA_FILE = STARTER_MODELS[0].repo, STARTER_MODELS[0].file  # the first-run offer's smallest model
SMALL = "tester/small-GGUF"
GATED = "tester/gated-GGUF"
SPLIT_PARTS = ("small-Q2_K-00001-of-00002.gguf", "small-Q2_K-00002-of-00002.gguf")
TOKEN = "hf_" + "x" * 34


def real_gguf() -> Path | None:
    value = os.environ.get("MODELDESK_TEST_GGUF") or from_env_file("MODELDESK_TEST_GGUF")
    if not value:
        main_env = Path("/work/main/.cache/test-servers.env")
        for line in main_env.read_text().splitlines() if main_env.is_file() else ():
            if line.startswith("MODELDESK_TEST_GGUF="):
                value = line.partition("=")[2]
    return Path(value) if value and Path(value).is_file() else None


def small_gguf(path: Path, *, split: tuple[int, int] | None = None, size_mb: int = 3) -> Path:
    """A valid little llama GGUF with random bytes (not a hole) as tensor data, so sha256 means something."""
    kvs = [
        ("general.architecture", STR, "llama"),
        ("general.name", STR, "Small"),
        ("llama.block_count", U32, 4),
        ("llama.embedding_length", U32, 256),
        ("llama.attention.head_count", U32, 4),
        ("llama.attention.head_count_kv", U32, 2),
        ("llama.context_length", U32, 2048),
    ]
    if split is not None:
        kvs += [("split.no", 4, split[0]), ("split.count", 4, split[1])]
    write_gguf(path, kvs, [Tensor("blk.0.weight", (size_mb * 2 * 1024 * 1024,))])
    with open(path, "r+b") as file:  # fill the tensor data: incompressible, so every byte counts
        file.seek(4096)
        file.write(os.urandom(path.stat().st_size - 4096))
    return path


def hub_with(client: httpx.AsyncClient, token: str | None = None) -> HubClient:
    async def source() -> str | None:
        return token

    return HubClient(client, token=source)  # the endpoint comes from HF_ENDPOINT
