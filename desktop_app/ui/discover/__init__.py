"""The Discover pane: GGUF models from Hugging Face, whether they fit this machine, downloads, Run."""

from desktop_app.ui.discover.pane import DiscoverPane

__all__ = ["DiscoverPane"]
