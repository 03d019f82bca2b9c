"""What a model is, as LiteLLM's bundled map says (context window, prices, what it takes) or, for
Ollama, as the server's `/api/show` says; and the small file that keeps what was read, so that
showing a model's details at start-up does not need LiteLLM (~150 MB) loaded.

`litellm` here is the module the engine thread imported; nothing in this module imports it.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from desktop_app.domain.models import ModelInfo
from desktop_app.domain.param_support import shown_params
from desktop_app.domain.providers import Provider
from desktop_app.services.paths import write_atomically

log = logging.getLogger(__name__)
# Modes of LiteLLM's model map that `acompletion` can chat with ("responses" models are bridged).
CHAT_MODES = frozenset({"chat", "responses"})


def bundled_models(litellm: ModuleType, provider: Provider) -> tuple[str, ...]:
    """The chat models LiteLLM's bundled map lists for `provider`, named as the provider names them."""
    if provider.model_map_name is None:
        return ()
    names = getattr(litellm, "models_by_provider", {}).get(provider.model_map_name) or ()
    cost = getattr(litellm, "model_cost", {})
    prefix = f"{provider.model_map_name}/"

    def entry(name: str) -> Any:
        return cost.get(name) or cost.get(prefix + name)

    chat = {
        name.removeprefix(prefix)
        for name in names
        if isinstance(entry(name), dict)
        and entry(name).get("mode", "chat") in CHAT_MODES
        and name.removeprefix(prefix).startswith(provider.model_map_prefix)
    }
    return tuple(sorted(chat))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _per_mtok(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(float(value) * 1_000_000, 6)


def model_info_from(litellm: ModuleType, provider: Provider, model: str) -> ModelInfo:
    """What LiteLLM's bundled map says about `model` of `provider`; all None when it does not know it.

    Only providers in the map are asked: LiteLLM's lookup for Ollama posts to a server (blocking),
    and a local or proxy model that happens to share a cloud model's name must not get its prices.
    Prices come only from a real entry of the map: for models it only generalises from a sibling
    (OpenRouter's), LiteLLM fills in 0 for unknown prices, which would read as "free".
    """
    unknown = ModelInfo(model)
    if provider.model_map_name is None:
        return unknown
    try:
        info = litellm.get_model_info(model=model, custom_llm_provider=provider.litellm_prefix)
    except Exception:  # noqa: BLE001  (ModelNotMappedError, or anything: never raise for details)
        return unknown
    if not isinstance(info, dict):
        return unknown
    entry = litellm.model_cost.get(info.get("key") or "")
    priced = (
        isinstance(entry, dict)
        and entry.get("input_cost_per_token") is not None
        and entry.get("output_cost_per_token") is not None
    )
    return ModelInfo(
        model=model,
        params=_shown_params(litellm, provider, model, _bool(info.get("supports_reasoning"))),
        context_window=_int(info.get("max_input_tokens")),
        max_output=_int(info.get("max_output_tokens")),
        vision=_bool(info.get("supports_vision")),
        tools=_bool(info.get("supports_function_calling")),
        json_schema=_bool(info.get("supports_response_schema")),
        input_usd_per_mtok=_per_mtok(entry["input_cost_per_token"]) if priced else None,
        output_usd_per_mtok=_per_mtok(entry["output_cost_per_token"]) if priced else None,
    )


def _shown_params(
    litellm: ModuleType, provider: Provider, model: str, reasoning: bool | None
) -> tuple[str, ...] | None:
    try:
        listed = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider.litellm_prefix)
    except Exception:  # noqa: BLE001  (LiteLLM cannot tell: every row stays)
        return None
    return shown_params(provider.id, listed, reasoning) if listed else None


def ollama_model_info(model: str, shown: Any) -> ModelInfo:
    """What Ollama's `/api/show` says `model` can do: its `capabilities` ("completion", "vision",
    "tools", "thinking", "embedding"...); all None when the Ollama is too old to list them. The
    context length it reports is the model's training context, not the `num_ctx` a chat gets, so
    it is not given as the model's window."""
    capabilities = shown.get("capabilities") if isinstance(shown, dict) else None
    if not isinstance(capabilities, list):
        return ModelInfo(model)
    can = {c for c in capabilities if isinstance(c, str)}
    return ModelInfo(model, vision="vision" in can, tools="tools" in can)


def kept_info(model: str, fields: dict[str, Any]) -> ModelInfo:
    params = fields.get("params")
    return ModelInfo(model=model, **{**fields, "params": None if params is None else tuple(params)})


INFO_FIELDS = tuple(name for name in ModelInfo.__dataclass_fields__ if name != "model")


def litellm_version() -> str:
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return ""


def read_model_info(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The kept details, if LiteLLM's version is still the one that gave them ({} otherwise)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("litellm") != litellm_version() or not litellm_version():
        return {}
    kept: dict[str, dict[str, dict[str, Any]]] = {}
    for provider_id, models in (data.get("providers") or {}).items():
        if not isinstance(models, dict):
            continue
        for model, fields in models.items():
            params = fields.get("params") if isinstance(fields, dict) else None
            if (
                isinstance(fields, dict)
                and set(fields) == set(INFO_FIELDS)
                and (params is None or (isinstance(params, list) and all(isinstance(p, str) for p in params)))
            ):
                kept.setdefault(provider_id, {})[model] = fields
    return kept


def write_model_info(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data, mode=0o644)
    except OSError:
        log.warning("could not keep the model details", exc_info=True)
