"""The llama.cpp pane: llama-servers by address, one started here, and a router's models."""

from desktop_app.ui.llamacpp.models import RouterModelsModel, ServersModel
from desktop_app.ui.llamacpp.pane import LlamaCppPane

__all__ = ["LlamaCppPane", "RouterModelsModel", "ServersModel"]
