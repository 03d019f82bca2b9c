"""A plain-text report for bug reports: versions, where files are, what is configured, recent errors.

The report is meant to be pasted into a public issue, so it is built to carry no secret:
* keys are never read for it (the keyring is not asked; only its backend's name is shown);
* extra-header values are never listed, only their names; URLs lose user:password@, the query
  and the fragment;
* the finished text goes through `scrub`, which blanks anything shaped like a key (sk-..., sk-ant-...,
  AIza..., gsk_..., xai-..., Bearer/Basic credentials, key=value pairs, JWTs, long random strings)
  and the exact value of every credential-looking environment variable.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from desktop_app import __version__
from desktop_app.domain.providers import PROVIDERS
from desktop_app.domain.settings import Settings
from desktop_app.services.paths import AppPaths

REDACTED = "[redacted]"
_RUN = r"[A-Za-z0-9_\-]"

# Order matters: the credential forms go first, so the later, broader rules never see half a key.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@host in any URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]*@"), rf"\1{REDACTED}@"),
    # HTTP credentials
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+"), f"Bearer {REDACTED}"),
    (re.compile(r"\bBasic\s+[A-Za-z0-9+/=]{8,}"), f"Basic {REDACTED}"),
    # Provider key shapes (OpenAI, Anthropic, OpenRouter, DeepSeek, LiteLLM: sk-; Groq gsk_; xAI xai-;
    # Hugging Face hf_; GitHub; Replicate r8_; Perplexity pplx-; NVIDIA nvapi-; AWS access keys).
    (
        re.compile(rf"\b(sk-|gsk_|xai-|hf_|ghp_|gho_|ghs_|github_pat_|r8_|pplx-|nvapi-|AKIA|ASIA){_RUN}{{6,}}"),
        rf"\1{REDACTED}",
    ),
    (re.compile(rf"\bAIza{_RUN}{{10,}}"), f"AIza{REDACTED}"),
    # JSON Web Tokens
    (re.compile(rf"\beyJ{_RUN}{{4,}}\.{_RUN}{{4,}}(?:\.{_RUN}*)?"), REDACTED),
    # api_key=..., "token": "...", x-api-key: ..., password=... (also in query strings and JSON)
    (
        re.compile(r"""(?ix)
        (\b[\w\-]*(?:api[_\-]?key|apikey|access[_\-]?key|secret|token|passw(?:or)?d|pwd|credentials?
                   |authorization|auth|x-api-key|x-goog-api-key|key)
         ["']?\s*[:=]\s*["']?)
        (?!\[redacted\](?:[\s"'&,;}\]]|$)|Bearer\b|Basic\b)(?:\[redacted\]|[^\s"'&,;}\[\]])+"""),
        rf"\1{REDACTED}",
    ),
    # Any other long run of letters and digits that mixes both (Mistral-style keys have no prefix).
    # Hex digests and words are left alone: they lack capitals or digits.
    (
        re.compile(
            r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])"
            r"[A-Za-z0-9]{20,}(?![A-Za-z0-9])"
        ),
        REDACTED,
    ),
)

# A word of the name (MY_SERVICE_TOKEN, DB_PASSWD, APIKEY), not any substring (TOKENIZERS_PARALLELISM).
_CREDENTIAL_NAME = re.compile(
    r"(?i)(?:^|_)[A-Z0-9]*(?:key|token|secret|passw(?:or)?d|passphrase|pwd|pass|auth|credentials?)(?:_|$)"
)
# Values that are never credentials, whatever the variable is called (PWD, XAUTHORITY, SSH_AUTH_SOCK,
# TOKENIZERS_PARALLELISM...): paths and lists of them, socket addresses, numbers and switches.
_PATH = re.compile(r"(?:/|~/|\.{1,2}/|[A-Za-z]:[\\/])")
_PLAIN_VALUE = re.compile(r"(?i)[+-]?\d+(?:\.\d+)?|true|false|yes|no|on|off|none|null|unix:\w+=/\S*")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and everything shaped like a credential blanked out."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def env_secrets(environ: Mapping[str, str]) -> list[str]:
    """The values of provider key variables, and of variables named like a credential whose value
    could be one (a path, a number or a switch is not: blanking it would blank it all over the report)."""
    provider_vars = {name for p in PROVIDERS.values() for name in p.env_vars}
    return [
        value.strip()
        for name, value in environ.items()
        if value.strip()
        and (name in provider_vars or (_CREDENTIAL_NAME.search(name) and _could_be_secret(value.strip())))
    ]


def _could_be_secret(value: str) -> bool:
    if _PLAIN_VALUE.fullmatch(value):
        return False
    paths = [part for part in value.split(os.pathsep) if part]
    return not (paths and all(_PATH.match(part) for part in paths))


def safe_url(url: str) -> str:
    """scheme://host:port/path, without user:password@, query or fragment."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


class _SecretsInfo(Protocol):
    @property
    def backend_name(self) -> str: ...
    @property
    def persistent(self) -> bool: ...
    @property
    def notice(self) -> str | None: ...


def collect_diagnostics(
    *,
    settings: Settings,
    secrets: _SecretsInfo,
    paths: AppPaths,
    recent_errors: Iterable[str],
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """The report, ready to copy. Reads nothing from the keyring and never blocks."""
    env = os.environ if environ is None else environ
    lines = [f"ModelDesk diagnostics, {(now or datetime.now(UTC)).strftime('%Y-%m-%d %H:%M UTC')}", ""]

    lines += [
        "Versions",
        f"  ModelDesk {__version__}",
        (
            f"  Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{'frozen bundle' if getattr(sys, 'frozen', False) else 'from source'}"
        ),
        f"  Platform {platform.platform()}",
        f"  Qt {_qt_version()}, PySide6 {_dist_version('PySide6-Essentials', 'PySide6')}",
        f"  LiteLLM {_litellm_version()}",
        "",
    ]

    lines += [
        "Keyring",
        (
            f"  backend: {secrets.backend_name}, "
            f"{'keys persist' if secrets.persistent else 'keys kept in memory for this session'}"
        ),
    ]
    if secrets.notice:
        lines.append(f"  notice: {secrets.notice}")
    lines.append("")

    lines += [
        "Files",
        f"  config: {paths.config_dir}",
        f"  data:   {paths.data_dir}",
        f"  cache:  {paths.cache_dir}",
        f"  logs:   {paths.log_dir}",
        "",
    ]

    lines += [
        "Settings",
        (
            f"  theme {settings.theme}, request timeout {settings.request_timeout_s:g} s, "
            f"{len(settings.accounts)} account(s), {len(settings.pools)} pool(s)"
        ),
    ]
    for account in settings.accounts:
        lines.append("  - " + _account_line(account))
    for pool in settings.pools:
        provider = PROVIDERS.get(pool.provider_id)
        lines.append(
            f"  - pool “{pool.label}”: {provider.name if provider else pool.provider_id}, "
            f"{pool.strategy.value}, {len(pool.account_ids)} account(s)"
        )
    lines.append("")

    lines += ["Environment", "  " + _environment_line(env), ""]

    errors = list(recent_errors)
    lines.append(f"Recent warnings and errors ({len(errors)})")
    lines += [f"  {line}" for error in errors for line in str(error).splitlines()] or ["  none"]

    return scrub("\n".join(lines) + "\n", env_secrets(env))


def _account_line(account) -> str:
    provider = PROVIDERS.get(account.provider_id)
    parts = [
        f"{provider.name if provider else account.provider_id} “{account.label}”",
        safe_url(account.effective_base_url),
        "enabled" if account.enabled else "disabled",
    ]
    if account.extra_headers:
        parts.append("extra headers " + ", ".join(sorted(account.extra_headers)) + " (values not shown)")
    if account.daily_budget_tokens:
        parts.append(f"budget {account.daily_budget_tokens:,} tokens/day")
    if account.daily_budget_usd:
        parts.append(f"budget ${account.daily_budget_usd:,.2f}/day")
    return ", ".join(parts)


def _environment_line(env: Mapping[str, str]) -> str:
    provider_vars = sorted({name for p in PROVIDERS.values() for name in p.env_vars if env.get(name, "").strip()})
    facts = [f"provider variables set: {', '.join(provider_vars) or 'none'}"]
    for name in ("OLLAMA_HOST", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        if env.get(name, "").strip():
            value = env[name].strip()
            facts.append(f"{name}={safe_url(value) if '://' in value else value}")
    for name in ("QT_QPA_PLATFORM", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP"):
        if env.get(name):
            facts.append(f"{name}={env[name]}")
    return "; ".join(facts)


def _dist_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _qt_version() -> str:
    # Services never import Qt; if the UI has loaded it, ask the module that is already there.
    qtcore = sys.modules.get("PySide6.QtCore")
    return qtcore.qVersion() if qtcore is not None else "not loaded"


def _litellm_version() -> str:
    version = _dist_version("litellm")
    return version if "litellm" in sys.modules else f"{version} (not imported yet)"
