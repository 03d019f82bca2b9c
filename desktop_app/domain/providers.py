"""What ModelDesk knows about each provider: one catalog entry per provider, no special paths."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ModelListStyle(StrEnum):
    OPENAI = "openai"  # GET {base}/models, Authorization: Bearer
    ANTHROPIC = "anthropic"  # GET {base}/v1/models, x-api-key + anthropic-version
    GEMINI = "gemini"  # GET {base}/v1beta/models, x-goog-api-key (never ?key= in the URL)
    OLLAMA = "ollama"  # GET {base}/api/tags


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    litellm_prefix: str
    default_base_url: str
    key_required: bool
    list_style: ModelListStyle
    is_local: bool = False
    key_prefix: str = ""  # what a key of this provider usually starts with (a hint, not a rule)

    def base_url(self, override: str | None) -> str:
        return (override or self.default_base_url).rstrip("/")


PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider("openai", "OpenAI", "openai", "https://api.openai.com/v1", True, ModelListStyle.OPENAI,
                 key_prefix="sk-"),
        Provider("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", True,
                 ModelListStyle.ANTHROPIC, key_prefix="sk-ant-"),
        Provider("gemini", "Google Gemini", "gemini", "https://generativelanguage.googleapis.com", True,
                 ModelListStyle.GEMINI, key_prefix="AI"),
        Provider("mistral", "Mistral", "mistral", "https://api.mistral.ai/v1", True, ModelListStyle.OPENAI),
        Provider("deepseek", "DeepSeek", "deepseek", "https://api.deepseek.com/v1", True,
                 ModelListStyle.OPENAI, key_prefix="sk-"),
        Provider("ollama", "Ollama", "ollama_chat", "http://127.0.0.1:11434", False, ModelListStyle.OLLAMA,
                 is_local=True),
        Provider("llamacpp", "llama.cpp server", "openai", "http://127.0.0.1:8080/v1", False,
                 ModelListStyle.OPENAI, is_local=True),
        Provider("openai_compatible", "OpenAI-compatible server", "openai", "http://127.0.0.1:8000/v1", False,
                 ModelListStyle.OPENAI, is_local=True),
    )
}


def provider(provider_id: str) -> Provider:
    try:
        return PROVIDERS[provider_id]
    except KeyError:
        raise ValueError(f"Unknown provider {provider_id!r}.") from None
