"""Stage the Discover pane for scripts/screenshot.py: a loopback Hugging Face Hub with real-looking repos.

The Hub twin (tests/servers/hf_hub.py) serves GGUF files that are a real header (the numbers a
model of that family has) followed by a hole, so the fit badges come from a header read by range
as they would from huggingface.co; the file bodies trickle out, so a download is under way when
the window is grabbed. The Hardware box shows this machine's RAM and CPU and, so that every verdict
appears, a GPU as a recorded `nvidia-smi` answer (an 8 GB laptop card) puts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

GB = 10**9
BIG = "Qwen/Qwen2.5-14B-Instruct-GGUF"
SMALL = "Qwen/Qwen2.5-0.5B-Instruct-GGUF"
# repo: (downloads, likes, licence, gated, last modified, [(file, size in bytes)])
REPOS = {
    "bartowski/Llama-3.2-3B-Instruct-GGUF": (
        1_215_000,
        241,
        "llama3.2",
        False,
        "2025-01-09",
        [("Llama-3.2-3B-Instruct-Q4_K_M.gguf", 2.02)],
    ),
    "unsloth/gemma-3-4b-it-GGUF": (
        806_000,
        172,
        "gemma",
        "manual",
        "2025-03-20",
        [("gemma-3-4b-it-Q4_K_M.gguf", 2.49)],
    ),
    BIG: (
        412_000,
        187,
        "apache-2.0",
        False,
        "2024-09-20",
        [
            ("qwen2.5-14b-instruct-q2_k.gguf", 5.77),
            ("qwen2.5-14b-instruct-q3_k_m.gguf", 7.34),
            ("qwen2.5-14b-instruct-q4_k_m.gguf", 8.99),
            ("qwen2.5-14b-instruct-q6_k.gguf", 12.12),
            ("qwen2.5-14b-instruct-q8_0.gguf", 15.70),
            ("qwen2.5-14b-instruct-f16-00001-of-00004.gguf", 7.96),
            ("qwen2.5-14b-instruct-f16-00002-of-00004.gguf", 7.98),
            ("qwen2.5-14b-instruct-f16-00003-of-00004.gguf", 7.98),
            ("qwen2.5-14b-instruct-f16-00004-of-00004.gguf", 5.62),
        ],
    ),
    SMALL: (
        398_000,
        136,
        "apache-2.0",
        False,
        "2024-09-19",
        [("qwen2.5-0.5b-instruct-q4_k_m.gguf", 0.491), ("qwen2.5-0.5b-instruct-q8_0.gguf", 0.676)],
    ),
    "microsoft/Phi-3-mini-4k-instruct-gguf": (
        301_000,
        492,
        "mit",
        False,
        "2024-07-02",
        [("Phi-3-mini-4k-instruct-q4.gguf", 2.39)],
    ),
    "TheBloke/Mistral-7B-Instruct-v0.2-GGUF": (
        254_000,
        448,
        "apache-2.0",
        False,
        "2023-12-11",
        [("mistral-7b-instruct-v0.2.Q4_K_M.gguf", 4.37)],
    ),
    "meta-llama/Llama-3.1-8B-Instruct-GGUF": (
        187_000,
        95,
        "llama3.1",
        "manual",
        "2024-12-03",
        [("Llama-3.1-8B-Instruct-Q4_K_M.gguf", 4.92)],
    ),
    "ggml-org/gemma-3-270m-GGUF": (96_000, 58, "gemma", False, "2025-08-14", [("gemma-3-270m-Q4_K_M.gguf", 0.253)]),
}
# Qwen2.5: 14B has 48 layers, 40 heads, 8 KV heads of 128; 0.5B has 24 layers, 14 heads, 2 KV heads of 64.
SHAPES = {BIG: (48, 40, 8, 5120), SMALL: (24, 14, 2, 896)}
RTX_4060 = "name, memory.total [MiB], memory.free [MiB]\nNVIDIA GeForce RTX 4060 Laptop GPU, 8188 MiB, 7948 MiB\n"


def _header_file(folder: Path, name: str, size: float, shape: tuple[int, int, int, int]) -> Path:
    from tests.unit.gguf_files import STR, U32, write_gguf

    layers, heads, kv_heads, width = shape
    kvs = [
        ("general.architecture", STR, "qwen2"),
        ("general.name", STR, name.rsplit(".", 1)[0]),
        ("qwen2.block_count", U32, layers),
        ("qwen2.embedding_length", U32, width),
        ("qwen2.attention.head_count", U32, heads),
        ("qwen2.attention.head_count_kv", U32, kv_heads),
        ("qwen2.context_length", U32, 32768),
    ]
    path = write_gguf(folder / name, kvs)
    os.truncate(path, int(size * GB))  # a hole: the twin sends zeros after the header
    return path


def start_hub(stack: ExitStack, home: Path) -> None:
    """Serve REPOS on loopback (stopped with `stack`); HF_ENDPOINT, HF_HOME and PATH point the app at it."""
    from tests.servers.hf_hub import HfHubTwin

    class TricklingHub(HfHubTwin):
        async def _send_body(self, file, start: int, length: int, writer) -> None:
            with open(file.source, "rb") as source:  # noqa: ASYNC230 - a staging server
                source.seek(start)
                sent = 0
                while sent < length:
                    chunk = source.read(min(512 * 1024, length - sent))
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                    await asyncio.sleep(0.01)

    files = Path(tempfile.mkdtemp(prefix="modeldesk-shot-hub-"))
    stack.callback(shutil.rmtree, files, ignore_errors=True)
    hub = TricklingHub()
    for repo_id, (downloads, likes, licence, gated, updated, names) in REPOS.items():
        repo = hub.repo(
            repo_id,
            downloads=downloads,
            likes=likes,
            license=licence,
            gated=gated,
            last_modified=f"{updated}T10:00:00.000Z",
        )
        for name, size in names:
            source = _header_file(files, name, size, SHAPES.get(repo_id, (32, 32, 8, 4096)))
            repo.add(name, source, hashlib.sha256(f"{repo_id}/{name}".encode()).hexdigest())
    hub.start()
    stack.callback(hub.stop)
    tools = files / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text(f"#!/bin/sh\ncat <<'EOF'\n{RTX_4060}EOF\n")
    (tools / "nvidia-smi").chmod(0o755)
    os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["HF_ENDPOINT"] = hub.base_url
    os.environ["HF_HOME"] = str(home / "huggingface")


async def stage_discover(app) -> None:
    from scripts.screenshot_panes import _until

    pane = app.discover_pane
    app.window.show_pane("Discover")
    await _until(lambda: pane.repos_model.rowCount() == len(REPOS) and pane.hardware is not None)
    # One download paused (Cancel keeps its bytes), one under way.
    await pane.show_repo(SMALL)
    pane.files_view.selectRow(1)
    first = pane.download_selected()
    await _until(lambda: first is not None and first.progress().fraction > 0.2)
    await pane.download_action(first.name, "cancel")
    pane.files_view.selectRow(0)
    running = pane.download_selected()
    # The 14B repo: its files, split fp16 as one, with a badge each.
    row = [pane.repos_model.row_at(r).id for r in range(pane.repos_model.rowCount())].index(BIG)
    pane.repos_view.selectRow(row)
    fits = pane.files_model
    await _until(lambda: fits.rowCount() == 6 and "—" not in [fits.index(r, 3).data() for r in range(6)])
    pane.files_view.selectRow(2)
    await _until(lambda: running is not None and running.progress().fraction > 0.35)
