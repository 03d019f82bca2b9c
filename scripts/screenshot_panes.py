"""Stage the Ollama and llama.cpp panes for scripts/screenshot.py, with real parts.

Ollama: two strict loopback Ollama servers (tests/servers/ollama_server.py; no Ollama binary runs
here), the local one with installed models, one loaded and a pull under way, and a remote one
behind a key. llama.cpp: the real llama-server and Gemma GGUF from `make servers`, started by the
pane as a router over a folder of two model files, one of them loaded.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path


def start_ollama_servers(stack: ExitStack) -> None:
    """Start the loopback servers (stopped with `stack`) and point OLLAMA_HOST at the local one."""
    from tests.servers.ollama_server import OllamaServer

    local = stack.enter_context(
        OllamaServer(
            installed=("gemma3:270m", "qwen2.5:0.5b", "llama3.2:1b", "nomic-embed-text:latest"),
            tick_s=0.25,
            bytes_per_tick=40_000_000,
        )
    )
    remote = stack.enter_context(OllamaServer(installed=("mistral:latest",), api_key="screenshot-key"))
    os.environ["OLLAMA_HOST"] = local.base_url
    os.environ["MODELDESK_SHOT_REMOTE_OLLAMA"] = f"localhost:{remote.port}"


async def _until(condition, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the pane did not get there in time")
        await asyncio.sleep(0.05)


async def stage_ollama(app) -> None:
    pane = app.ollama_pane
    app.window.show_pane("Ollama")
    await _until(lambda: pane.host_status is not None and pane.installed_model.rowCount() == 4)
    # The remote host goes in the host list; the pane stays on the local one.
    await app.local.ollama.add(
        url=os.environ["MODELDESK_SHOT_REMOTE_OLLAMA"], label="Workstation", key="screenshot-key"
    )
    await pane.refresh()
    await pane.load("gemma3:270m")
    pane.select_installed("qwen2.5:0.5b")
    await _until(lambda: pane.details.title.text() == "qwen2.5:0.5b")
    await pane.pull("llama3.2:latest")
    job = pane.service.pull_job("llama3.2:latest")
    await _until(lambda: job is not None and job.progress().fraction > 0.3)


async def stage_llamacpp(app) -> None:
    from desktop_app.domain.llamacpp import RouterModelStatus, builtin_template_args

    binary = os.environ["MODELDESK_TEST_LLAMA_SERVER"]
    gguf = Path(os.environ["MODELDESK_TEST_GGUF"])
    folder = Path(tempfile.mkdtemp(prefix="modeldesk-shot-models-"))
    for name in ("gemma3-270m-chat.gguf", "gemma3-270m-notes.gguf"):
        (folder / name).symlink_to(gguf)
    pane = app.llamacpp_pane
    app.window.show_pane("llama.cpp")
    pane.form.binary_edit.setText(binary)
    pane.form.ctx_spin.setValue(2048)
    pane.form.threads_spin.setValue(2)
    pane.form.extra_args_edit.setText(" ".join(builtin_template_args("gemma")))
    pane.form.choose_model_file(gguf)
    await pane.start_managed(pane.spec_from_form(models_dir=folder))
    await pane.router_load("gemma3-270m-chat")
    await pane.refresh_router()
    await _until(lambda: any(m.status is RouterModelStatus.LOADED for m in pane.router_model.models()))
    pane.router_box.select_model("gemma3-270m-chat")
    pane.servers_box.view.selectRow(0)


COMPARE_QUESTION = "In two sentences: why do SQLite databases use write-ahead logging?"
COMPARE_ANSWERS = (
    "Write-ahead logging appends changes to a separate log instead of rewriting pages in place, so "
    "readers keep seeing a consistent snapshot while one writer works. A crash mid-write leaves the "
    "main file untouched, and the log is replayed or discarded on the next open.",
    "With WAL, readers and a writer no longer block each other: new pages go to the `-wal` file and "
    "are checkpointed into the database later. It is also faster for most workloads, since commits "
    "are sequential appends with fewer `fsync` calls.",
    "SQLite uses a write-ahead log so that writes are saved to a log first. This makes it safer if "
    "the program crashes and lets other programs read the database while it is being written.",
)


async def seed_comparison(store, claude_id: str, personal_id: str, local_id: str) -> None:
    """A stored comparison of one turn, as three columns streaming it would have left it."""
    from desktop_app.domain.chat import ChatParams, ReplyMetrics
    from desktop_app.domain.compare import CompareColumn, CompareSetup

    columns = (
        CompareColumn(account_id=claude_id, model="claude-sonnet-4-5"),
        CompareColumn(account_id=personal_id, model="claude-haiku-4-5"),
        CompareColumn(account_id=local_id, model="gemma", overrides={"temperature": 0.2}),
    )
    figures = (
        ReplyMetrics(ttft_s=0.612, tokens_per_s=58.2, prompt_tokens=24, completion_tokens=61, cost_usd=0.000987),
        ReplyMetrics(ttft_s=0.344, tokens_per_s=121.5, prompt_tokens=24, completion_tokens=58, cost_usd=0.000314),
        ReplyMetrics(ttft_s=0.071, tokens_per_s=63.4, prompt_tokens=27, completion_tokens=44),
    )
    conv = await store.create_conversation(
        title="WAL: three models", account_id=claude_id, model=columns[0].model, params=ChatParams(temperature=0.7)
    )
    await store.set_compare(conv.id, CompareSetup(columns=columns))
    await store.add_message(conv.id, role="user", content=COMPARE_QUESTION)
    for lane, (column, answer, metrics) in enumerate(zip(columns, COMPARE_ANSWERS, figures), 1):
        reply = await store.add_message(
            conv.id, role="assistant", content="", account_id=column.account_id, model=column.model, lane=lane
        )
        metrics.latency_s = metrics.ttft_s + (metrics.completion_tokens or 0) / (metrics.tokens_per_s or 1)
        await store.update_message(reply.id, content=answer, metrics=metrics)


async def stage_compare(app) -> None:
    """Open the seeded comparison (the most recent conversation is opened at start)."""
    pane = app.chat_pane
    for conversation in await app.store.list_conversations():
        if conversation.compare is not None:
            await pane.open_conversation(conversation)
            return
    raise RuntimeError("no comparison was seeded")


async def seed_vision(store, paths, account_id: str) -> None:
    """A conversation whose question carries two images (a bar chart and a photo-like picture), kept
    by the app's attachment store as an attached file would be, and the answer about them."""
    import io

    from PIL import Image, ImageDraw

    from desktop_app.domain.attachments import image_limits
    from desktop_app.domain.chat import ReplyMetrics
    from desktop_app.services.chat.attachments import AttachmentStore

    chart = Image.new("RGB", (640, 400), (250, 250, 250))
    draw = ImageDraw.Draw(chart)
    for i, height in enumerate((120, 210, 160, 300, 250)):
        draw.rectangle((60 + i * 110, 360 - height, 130 + i * 110, 360), fill=(37, 99, 235))
    draw.line((40, 360, 620, 360), fill=(60, 60, 60), width=3)
    sunset = Image.linear_gradient("L").resize((640, 420))
    photo = Image.merge("RGB", (sunset.point(lambda v: 255 - v // 3), sunset.point(lambda v: 140 - v // 3), sunset))
    ImageDraw.Draw(photo).ellipse((250, 220, 390, 360), fill=(255, 200, 80))
    store_files = AttachmentStore(paths.attachments_dir)
    attached = []
    for image, name in ((chart, "sales-by-quarter.png"), (photo, "harbour.jpg")):
        out = io.BytesIO()
        image.save(out, "PNG" if name.endswith(".png") else "JPEG", quality=88)
        attached.append(await store_files.add_bytes(out.getvalue(), name, image_limits("anthropic")))
    conv = await store.create_conversation(
        title="What is in these pictures?", account_id=account_id, model="claude-sonnet-4-5"
    )
    await store.add_message(
        conv.id,
        role="user",
        content="Which quarter sold most, and what time of day is the photo?",
        attachments=tuple(attached),
    )
    reply = await store.add_message(
        conv.id, role="assistant", content="", account_id=account_id, model="claude-sonnet-4-5"
    )
    await store.update_message(
        reply.id,
        content="The **fourth** bar is the tallest, so Q4 sold most. The photo shows a low sun in a warm"
        " sky: early evening, shortly before sunset.",
        metrics=ReplyMetrics(ttft_s=0.62, tokens_per_s=54.8, prompt_tokens=1712, completion_tokens=38, latency_s=1.31),
    )
