"""ModelDesk: manage local and cloud language models from one desktop window."""

__version__ = "0.1.0"
