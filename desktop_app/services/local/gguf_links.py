"""A folder of links to GGUF models kept in many folders: what a router over the library serves."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from desktop_app.services.local.gguf_header import SPLIT_NAME


def link_models(files: Sequence[Path], folder: Path) -> list[Path]:
    """Make `folder` hold a link to each GGUF model in `files` (and to every part of a split one),
    so one router's `--models-dir` serves models kept in many folders. Links left from an earlier
    call go first; nothing else in `folder` is touched. Two models with one file name get the
    parent folder's name in front. Multimodal projectors (mmproj-*) are no chat models: left out.
    Blocking: call it on a worker thread. Returns the links made for the models (first parts)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_symlink():
            entry.unlink()
    made: list[Path] = []
    taken: set[str] = set()
    for file in files:
        file = Path(file)
        if file.name.lower().startswith("mmproj"):
            continue
        split = SPLIT_NAME.match(file.name)
        parts = (
            sorted(file.parent.glob(f"{glob.escape(split['prefix'])}-*-of-{split['count']}.gguf")) if split else [file]
        )
        prefix = ""
        if any(part.name.lower() in taken for part in parts):
            prefix = f"{file.parent.name}-"
        for part in parts:
            link = folder / f"{prefix}{part.name}"
            if link.name.lower() in taken or link.exists():
                break
            link.symlink_to(part.resolve())
            taken.add(link.name.lower())
            if part == parts[0]:
                made.append(link)
    return made
