"""Release tags and archives packed as llama.cpp's release workflow packs build/bin."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

TAG, NEWER = "b9000", "b9100"


def tar_archive(path: Path, top: str, files: dict[str, Path | bytes]) -> Path:
    """An archive laid out as llama.cpp's release workflow packs build/bin: `<top>/<file>`."""
    with tarfile.open(path, "w:gz", compresslevel=1) as bundle:
        for name, source in files.items():
            if isinstance(source, Path):
                bundle.add(source, f"{top}/{name}")
            else:
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(source)
                bundle.addfile(info, io.BytesIO(source))
    return path
