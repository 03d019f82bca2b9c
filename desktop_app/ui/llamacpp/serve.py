"""One GGUF file on the local engine, in one call: what Discover's Run (and any "chat with this file")
uses, through the llama.cpp pane's own start and router paths, so a file starts exactly as the
pane's Start button would start it (its llama-server, context size, threads and extra arguments).

A router the pane shows that serves the file already loads it; otherwise the pane's own server is
started on it (replacing the one it ran before). Then the server's models go into the chat's picker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from desktop_app.domain.errors import DomainError
from desktop_app.ui.llamacpp.pane import LlamaCppPane


@dataclass(frozen=True, slots=True)
class Served:
    """The account and model the chat should pick, or the one sentence saying why not."""

    account_id: str = ""
    model: str = ""
    error: str = ""


def _same_file(a: str | Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


async def serve_file(llama: LlamaCppPane, path: Path) -> Served:
    """Serve `path` (loaded into the shown router when it has it, else on the pane's own server)."""
    url, model = llama.router_url, ""
    if url:
        await llama.refresh_router()
        model = next((m.id for m in llama.router_model.models() if m.path and _same_file(m.path, path)), "")
        if model and not await llama.router_load(model):
            return Served(error=llama.router_box.status.text() or f"The router could not load {model}.")
    if not model:
        llama.form.choose_model_file(path)
        try:
            spec = llama.spec_from_form()
        except DomainError as exc:
            return Served(error=f"{exc.message} {exc.action}".strip())
        if await llama.start_managed(spec) is None or llama.managed is None:
            return Served(error=llama.form.start_status.text() or f"{path.name} could not be started.")
        url, model = llama.managed.url, spec.alias or path.stem
    picked = await llama.use_in_chat(url)
    if picked is not None and picked.error is not None:
        return Served(error=picked.error.message)
    return Served(picked.account.id if picked is not None else "", model)
