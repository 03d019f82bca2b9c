"""Which request parameters a model takes: LiteLLM's word, plus the one it cannot give (top_k).

LiteLLM's `get_supported_openai_params` lists OpenAI's names only. `top_k` is not one, so LiteLLM
passes it through untouched to every provider; it is kept for the providers whose API documents it.
"""

from __future__ import annotations

from collections.abc import Iterable

# Providers whose API takes top_k (Anthropic, Gemini, Ollama's options, llama.cpp, vLLM, LM Studio,
# OpenRouter). OpenAI and the servers that copy its API strictly refuse it.
TOP_K_PROVIDERS = frozenset({"anthropic", "gemini", "ollama", "llamacpp", "vllm", "lmstudio", "openrouter"})
# The extended-thinking budget row is Anthropic's (`thinking` elsewhere has other shapes).
THINKING_PROVIDERS = frozenset({"anthropic"})
# The request parameters the panel's rows set; a row is shown only where the model takes its parameter.
PANEL_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    "thinking",
    "seed",
    "stop",
    "response_format",
)
_REASONING_PARAMS = frozenset({"reasoning_effort", "thinking"})


def taken_params(provider_id: str, litellm_params: Iterable[str]) -> frozenset[str]:
    """What a model of `provider_id` takes, from LiteLLM's list for it, top_k added where documented."""
    names = set(litellm_params)
    if provider_id in TOP_K_PROVIDERS:
        names.add("top_k")
    return frozenset(names)


def shown_params(provider_id: str, litellm_params: Iterable[str], reasoning: bool | None) -> tuple[str, ...]:
    """The panel's parameters to show for a model: those it takes, the reasoning ones only for a
    model LiteLLM says reasons (`supports_reasoning`), the thinking budget only for Anthropic's."""
    names = set(taken_params(provider_id, litellm_params))
    if reasoning is not True:
        names -= _REASONING_PARAMS
    if provider_id not in THINKING_PROVIDERS:
        names.discard("thinking")
    return tuple(name for name in PANEL_PARAMS if name in names)
