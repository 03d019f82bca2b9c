"""What ModelDesk knows about each provider: one catalog entry per provider, no special paths.

Adding a provider is one entry here: how LiteLLM names it, where it lives, whether it needs a key,
how to list its models (which doubles as the free key check), where its keys usually sit in the
environment, and how its keys usually start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The Azure OpenAI data-plane version used when an account names none (the GA one of the REST
# reference, learn.microsoft.com/rest/api/azureopenai); versions are "YYYY-MM-DD" or "YYYY-MM-DD-preview".
AZURE_API_VERSION = "2024-10-21"
AZURE_API_VERSION_PATTERN = r"\d{4}-\d{2}-\d{2}(-preview)?"
# Where Claude runs on Vertex AI unless the account names another region ("global" also works).
VERTEX_LOCATION = "us-east5"
AWS_REGION = "us-east-1"


class ModelListStyle(StrEnum):
    OPENAI = "openai"  # GET {base}/models, Authorization: Bearer
    ANTHROPIC = "anthropic"  # GET {base}/v1/models, x-api-key + anthropic-version
    GEMINI = "gemini"  # GET {base}/v1beta/models, x-goog-api-key (never ?key= in the URL)
    OLLAMA = "ollama"  # GET {base}/api/tags
    AZURE = "azure"  # GET {endpoint}/openai/models, api-key header (then the deployments)
    VERTEX = "vertex"  # GET {base}/v1beta1/publishers/anthropic/models, OAuth token of the service account
    BEDROCK = "bedrock"  # GET https://bedrock.{region}.amazonaws.com/foundation-models, SigV4-signed
    NONE = "none"  # no models to chat with (a Hugging Face token): only the key check runs


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
    env_vars: tuple[str, ...] = ()  # where its keys usually sit, for the first-run import
    # A key-check endpoint (relative to the base URL) for providers whose model list is public,
    # so listing alone would not prove the key works.
    key_check_path: str | None = None
    # Where a key's spend can be read (LiteLLM Proxy), relative to the server root.
    spend_path: str | None = None
    # The provider's name in LiteLLM's bundled model map (the last-resort model list).
    model_map_name: str | None = None
    # LiteLLM has no default endpoint for it, so the base URL is always passed (local servers too).
    needs_api_base: bool = False
    # False for an account that only holds a token for something else (Hugging Face downloads).
    chat: bool = True
    # The bundled map's names of this provider that it offers (Vertex AI: only Claude, "claude-").
    model_map_prefix: str = ""
    # The account's secret is a JSON document, never sent as a header: a Google service-account key
    # ("google") or AWS credentials ("aws": access key id, secret, optional session token).
    secret_kind: str = ""
    # The optional extra whose packages the provider needs ("vertex": google-auth), if any.
    extra: str = ""

    @property
    def sends_api_base(self) -> bool:
        return self.is_local or self.needs_api_base

    def base_url(self, override: str | None) -> str:
        return (override or self.default_base_url).rstrip("/")


PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider(
            "anthropic",
            "Anthropic",
            "anthropic",
            "https://api.anthropic.com",
            True,
            ModelListStyle.ANTHROPIC,
            key_prefix="sk-ant-",
            env_vars=("ANTHROPIC_API_KEY",),
            model_map_name="anthropic",
        ),
        Provider(
            "openai",
            "OpenAI",
            "openai",
            "https://api.openai.com/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="sk-",
            env_vars=("OPENAI_API_KEY",),
            model_map_name="openai",
        ),
        Provider(
            "gemini",
            "Google Gemini",
            "gemini",
            "https://generativelanguage.googleapis.com",
            True,
            ModelListStyle.GEMINI,
            key_prefix="AIza",
            env_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            model_map_name="gemini",
        ),
        Provider(
            "mistral",
            "Mistral",
            "mistral",
            "https://api.mistral.ai/v1",
            True,
            ModelListStyle.OPENAI,
            env_vars=("MISTRAL_API_KEY",),
            model_map_name="mistral",
        ),
        Provider(
            "deepseek",
            "DeepSeek",
            "deepseek",
            "https://api.deepseek.com/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="sk-",
            env_vars=("DEEPSEEK_API_KEY",),
            model_map_name="deepseek",
        ),
        Provider(
            "openrouter",
            "OpenRouter",
            "openrouter",
            "https://openrouter.ai/api/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="sk-or-",
            env_vars=("OPENROUTER_API_KEY",),
            key_check_path="/key",
            model_map_name="openrouter",
        ),
        Provider(
            "groq",
            "Groq",
            "groq",
            "https://api.groq.com/openai/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="gsk_",
            env_vars=("GROQ_API_KEY",),
            model_map_name="groq",
        ),
        Provider(
            "xai",
            "xAI",
            "xai",
            "https://api.x.ai/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="xai-",
            env_vars=("XAI_API_KEY",),
            model_map_name="xai",
        ),
        Provider(
            "azure",
            "Azure OpenAI",
            "azure",
            "",  # no default: each resource has its own endpoint (https://NAME.openai.azure.com)
            True,
            ModelListStyle.AZURE,
            model_map_name="azure",
            needs_api_base=True,
        ),
        Provider(
            "vertex",
            "Google Vertex AI (Claude)",
            "vertex_ai",
            "",  # https://{location}-aiplatform.googleapis.com: see Account.effective_base_url
            True,
            ModelListStyle.VERTEX,
            model_map_name="vertex_ai",
            model_map_prefix="claude-",
            secret_kind="google",
            extra="vertex",
        ),
        Provider(
            "bedrock",
            "Amazon Bedrock",
            "bedrock",
            "",  # https://bedrock-runtime.{region}.amazonaws.com: see Account.effective_base_url
            False,  # a named AWS profile needs no secret here
            ModelListStyle.BEDROCK,
            model_map_name="bedrock",
            secret_kind="aws",
            extra="bedrock",
        ),
        Provider(
            "ollama", "Ollama", "ollama_chat", "http://127.0.0.1:11434", False, ModelListStyle.OLLAMA, is_local=True
        ),
        Provider(
            "llamacpp",
            "llama.cpp server",
            "openai",
            "http://127.0.0.1:8080/v1",
            False,
            ModelListStyle.OPENAI,
            is_local=True,
        ),
        Provider(
            "lmstudio",
            "LM Studio",
            "lm_studio",
            "http://127.0.0.1:1234/v1",
            False,
            ModelListStyle.OPENAI,
            is_local=True,
        ),
        Provider(
            "vllm", "vLLM", "hosted_vllm", "http://127.0.0.1:8000/v1", False, ModelListStyle.OPENAI, is_local=True
        ),
        Provider(
            "openai_compatible",
            "OpenAI-compatible server",
            "openai",
            "http://127.0.0.1:8000/v1",
            False,
            ModelListStyle.OPENAI,
            is_local=True,
        ),
        Provider(
            "huggingface",
            "Hugging Face",
            "huggingface",
            "https://huggingface.co",
            True,
            ModelListStyle.NONE,
            key_prefix="hf_",
            env_vars=("HF_TOKEN",),
            key_check_path="/api/whoami-v2",  # the token is for gated and private model downloads
            chat=False,
        ),
        Provider(
            "litellm_proxy",
            "LiteLLM Proxy",
            "litellm_proxy",
            "http://127.0.0.1:4000/v1",
            True,
            ModelListStyle.OPENAI,
            key_prefix="sk-",
            env_vars=("LITELLM_API_KEY",),
            spend_path="/key/info",
            needs_api_base=True,
        ),
    )
}


def provider(provider_id: str) -> Provider:
    try:
        return PROVIDERS[provider_id]
    except KeyError:
        raise ValueError(f"Unknown provider {provider_id!r}.") from None


def key_prefix_warning(provider_id: str, key: str) -> str | None:
    """A one-sentence warning when a key does not look like this provider's (never a block)."""
    entry = PROVIDERS.get(provider_id)
    if entry is None or not entry.key_prefix or not key:
        return None
    # Anthropic keys also start with OpenAI's "sk-": look for the longer, more specific prefix first.
    owner = max(
        (p for p in PROVIDERS.values() if p.key_prefix and key.startswith(p.key_prefix)),
        key=lambda p: len(p.key_prefix),
        default=None,
    )
    if owner is not None and owner.id != entry.id and len(owner.key_prefix) > len(entry.key_prefix):
        return (
            f"This looks like a{'n' if owner.name[0] in 'AEIOU' else ''} {owner.name} key, not "
            f"a{'n' if entry.name[0] in 'AEIOU' else ''} {entry.name} one; check the provider."
        )
    if key.startswith(entry.key_prefix):
        return None
    return f"{entry.name} keys usually start with “{entry.key_prefix}”; check that this is the right key."
