"""The llama.cpp pane: llama-servers by address, one started here, and a router's models.

Its names are imported on first use: the GGUF files view (`library`) is built at start-up, the
pane only when it is first shown.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop_app.ui.llamacpp.models import RouterModelsModel, ServersModel
    from desktop_app.ui.llamacpp.pane import LlamaCppPane

__all__ = ["LlamaCppPane", "RouterModelsModel", "ServersModel"]
_MODULES = {"LlamaCppPane": "pane", "RouterModelsModel": "models", "ServersModel": "models"}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
