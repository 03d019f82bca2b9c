"""The Local models pane for Ollama: installed and running models, details, pulls with progress."""

from desktop_app.ui.ollama.delegate import PullJobDelegate
from desktop_app.ui.ollama.models import (
    InstalledModelsModel,
    PullJobsModel,
    RunningModelsModel,
)
from desktop_app.ui.ollama.pane import OllamaPane

__all__ = ["InstalledModelsModel", "OllamaPane", "PullJobDelegate", "PullJobsModel", "RunningModelsModel"]
