"""Export the accounts, pools and routes as a LiteLLM Proxy `config.yaml`, so other tools can use them too.

The file never holds a key: each deployment reads its key from an environment variable named
after the account (`api_key: os.environ/MODELDESK_CLAUDE_WORK_KEY`), and the proxy's own master
key (which LiteLLM 1.106+ demands before it starts) from LITELLM_MASTER_KEY; the proxy resolves
them at start-up, and `env_vars_to_set` lists the ones the user must set.

Names clients call (`model_name`):
* an account's model is exported under the model's own name ("claude-sonnet-4-5"). When two
  exported accounts offer the same model, each gets "<account-label-slug>/<model>" instead: a
  shared name would make LiteLLM's Router spread requests over both accounts, a pool nobody made.
* a pool's model is "<pool-label-slug>/<model>" ("claude-team/claude-sonnet-4-5"): one name shared
  by one deployment per member account, so the Router does the pooling. The slug keeps it apart
  from the members' own names, which still reach one account each.

Pool strategies, as the installed LiteLLM Router (1.106) really does them:
* failover: each member's deployment carries `order` 1, 2, 3... in pool order. The Router only
  picks among the healthy deployments with the lowest `order` (`get_order_filtered_deployments`),
  and when those fail it falls back to the next order level within the same request ("ORDER-BASED
  FALLBACKS" in `Router.async_function_with_fallbacks`), so no `fallbacks` list is needed.
* round robin: no `order`; `routing_strategy: simple-shuffle` spreads requests over the members at
  random (LiteLLM has no strict rotation; shuffling gives the same spread of load).
`routing_strategy` is router-wide, and shuffling among deployments of equal `order` is exactly
what both strategies need, so one setting serves every pool.

Routes: each target is its own model name, "<route-slug>" for the first (the name clients call) and
"<route-slug>/<n>-<model>" for the n-th; a pool target is one deployment per member with `order`.
`router_settings.fallbacks` sends a request the first target cannot answer to the others in order,
and `context_window_fallbacks` a context too long for it to those with a larger window.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import POOL_PREFIX, Pool, Strategy
from desktop_app.domain.routes import Route, RouteTarget
from desktop_app.domain.settings import Settings

ENV_PREFIX = "MODELDESK_"
ENV_SUFFIX = "_KEY"
# The variable LiteLLM's own docs and start-up refusal name; no account's variable can clash with
# it (those all start with ENV_PREFIX).
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
ENV_REFERENCE = "os.environ/"
# The OpenAI client LiteLLM uses for "openai/..." refuses to start without some key, even for a
# local server that ignores it (hosted_vllm, lm_studio and ollama_chat need none).
KEYLESS_PLACEHOLDER = "no-key"
ROUTER_SETTINGS: dict[str, Any] = {
    "routing_strategy": "simple-shuffle",
    # Retries of one request on the same model name (another deployment when one cools down).
    "num_retries": 2,
    # A deployment that fails more than once within a minute rests for cooldown_time seconds,
    # so the next requests start at the next account instead of hitting the failing one again.
    "allowed_fails": 1,
    "cooldown_time": 60,
}


def _ascii_words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return [w for w in re.split(r"[^A-Za-z0-9]+", plain) if w]


def _slug(text: str, fallback: str) -> str:
    return "-".join(_ascii_words(text)).lower() or fallback


def env_var_names(settings: Settings) -> dict[str, str]:
    """Account id -> the environment variable its key is read from in the exported config.

    Upper snake case of the label ("Claude (work)" -> MODELDESK_CLAUDE_WORK_KEY), unique across
    all accounts (MODELDESK_CLAUDE_WORK_2_KEY for a second one), in account order, so a name does
    not change when an account is disabled or the export selection changes.
    """
    names: dict[str, str] = {}
    used: set[str] = set()
    for account in settings.accounts:
        stem = "_".join(_ascii_words(account.label)).upper() or "ACCOUNT"
        name, number = f"{ENV_PREFIX}{stem}{ENV_SUFFIX}", 2
        while name in used:
            name, number = f"{ENV_PREFIX}{stem}_{number}{ENV_SUFFIX}", number + 1
        used.add(name)
        names[account.id] = name
    return names


def _secret_vars(account: Account, env_name: str, *, session_token: bool = False) -> dict[str, tuple[str, str]]:
    """LiteLLM parameter -> (the environment variable it is read from, what goes in it): the key;
    a Vertex AI service-account key file's JSON; an AWS access key id and secret (Bedrock), with the
    session token when the account's credentials are temporary ones."""
    label = " ".join(account.label.split())
    kind = account.provider.secret_kind
    if kind == "google":
        return {"vertex_credentials": (env_name, f"the service-account key file (its JSON) of account “{label}”")}
    if kind == "aws":
        stem = env_name.removesuffix(ENV_SUFFIX)
        return {
            "aws_access_key_id": (f"{stem}_AWS_ACCESS_KEY_ID", f"the AWS access key id of account “{label}”"),
            "aws_secret_access_key": (
                f"{stem}_AWS_SECRET_ACCESS_KEY",
                f"the AWS secret access key of account “{label}”",
            ),
            **(
                {"aws_session_token": (f"{stem}_AWS_SESSION_TOKEN", f"the AWS session token of account “{label}”")}
                if session_token
                else {}
            ),
        }
    return {"api_key": (env_name, f"the key of account “{label}”")}


def _litellm_params(
    account: Account, model: str, env_name: str, has_key: bool, session_token: bool = False
) -> dict[str, Any]:
    provider = account.provider
    params: dict[str, Any] = {"model": f"{provider.litellm_prefix}/{model}"}
    if has_key:
        secrets = _secret_vars(account, env_name, session_token=session_token)
        params.update({name: f"{ENV_REFERENCE}{var}" for name, (var, _what) in secrets.items()})
    elif provider.is_local and provider.litellm_prefix == "openai":
        params["api_key"] = KEYLESS_PLACEHOLDER
    if provider.sends_api_base or account.base_url:
        params["api_base"] = account.effective_base_url
    if account.extra_headers:
        params["extra_headers"] = dict(account.extra_headers)
    params.update(account.litellm_params)
    return params


def _pool_models(
    pool: Pool, members: Sequence[Account], models: Mapping[str, Sequence[str]]
) -> list[tuple[str, list[Account]]]:
    """(model, the members that serve it) for each model the pool exports.

    `models[pool.id]`, when given, names the pool's models and every enabled member serves them;
    otherwise the pool offers each model its members export, served by the members that export it.
    """
    if pool.id in models:
        return [(model, list(members)) for model in dict.fromkeys(models[pool.id])]
    offered = dict.fromkeys(m for account in members for m in models.get(account.id, ()))
    return [(model, [a for a in members if model in models.get(a.id, ())]) for model in offered]


def proxy_config(
    settings: Settings,
    models: Mapping[str, Sequence[str]],
    *,
    keyed: Collection[str] | None = None,
    session_tokens: Collection[str] = (),
    windows: Mapping[tuple[str, str], int | None] | None = None,
) -> dict[str, Any]:
    """The config as a dict; see `export_proxy_config`."""
    env_names = env_var_names(settings)
    enabled = {a.id: a for a in settings.accounts if a.enabled}
    if keyed is None:
        keyed = {a.id for a in enabled.values() if a.provider.key_required}

    def params(account: Account, model: str) -> dict[str, Any]:
        return _litellm_params(account, model, env_names[account.id], account.id in keyed, account.id in session_tokens)

    used: set[str] = set()
    model_list: list[dict[str, Any]] = []
    for pool in settings.pools:
        members = [enabled[i] for i in pool.account_ids if i in enabled]
        pool_slug = _slug(pool.label, "pool")
        pool_key = pool.id.removeprefix(POOL_PREFIX)
        for model, serving in _pool_models(pool, members, models):
            if not serving:
                continue
            name = f"{pool_slug}/{model}"
            if name in used:
                name = f"{pool_slug}-{pool_key}/{model}"
            used.add(name)
            for order, account in enumerate(serving, start=1):
                deployment_params = params(account, model)
                if pool.strategy is Strategy.FAILOVER:
                    deployment_params["order"] = order
                model_list.append(
                    {
                        "model_name": name,
                        "litellm_params": deployment_params,
                        "model_info": {"id": f"pool-{pool_key}-{account.id}-{model}"},
                    }
                )

    exported = [(a, m) for a in enabled.values() for m in dict.fromkeys(models.get(a.id, ()))]
    offered_by = Counter(m for _, m in exported)
    for account, model in exported:
        name = model if offered_by[model] == 1 else f"{_slug(account.label, 'account')}/{model}"
        if name in used:
            name = f"{account.id}/{model}"
        used.add(name)
        model_list.append(
            {
                "model_name": name,
                "litellm_params": params(account, model),
                "model_info": {"id": f"{account.id}-{model}"},
            }
        )

    fallbacks: list[dict[str, list[str]]] = []
    larger: list[dict[str, list[str]]] = []
    for route in settings.routes:
        placed = _route_deployments(route, settings, enabled, params, used, model_list)
        names = [name for name, _target in placed]
        if len(names) > 1:
            fallbacks.append({names[0]: names[1:]})
            bigger = _larger_windows(placed, windows or {})
            if bigger:
                larger.append({names[0]: bigger})

    config: dict[str, Any] = {"model_list": model_list}
    if settings.pools or settings.routes:
        config["router_settings"] = dict(ROUTER_SETTINGS)
    if fallbacks:
        config["router_settings"]["fallbacks"] = fallbacks
    if larger:
        config["router_settings"]["context_window_fallbacks"] = larger
    # ModelDesk itself drops parameters a provider does not take; the proxy should do the same.
    config["litellm_settings"] = {"drop_params": True}
    # LiteLLM Proxy 1.106+ refuses to start without a master key (the key its clients send).
    config["general_settings"] = {"master_key": f"{ENV_REFERENCE}{MASTER_KEY_ENV}"}
    return config


def _route_deployments(
    route: Route,
    settings: Settings,
    enabled: Mapping[str, Account],
    params: Any,
    used: set[str],
    model_list: list[dict[str, Any]],
) -> list[tuple[str, RouteTarget]]:
    """Add one model name per target of `route` to `model_list` (a pool's enabled members under one
    name, in `order`); returns (name, target) in route order. Targets with no enabled account are left out."""
    slug = _slug(route.label, "route")
    if slug in used:
        slug = f"{slug}-{route.id.removeprefix('route:')}"
    names: list[tuple[str, RouteTarget]] = []
    for position, target in enumerate(route.targets, start=1):
        pool = settings.pool(target.target_id)
        serving = [enabled[i] for i in (pool.account_ids if pool else (target.target_id,)) if i in enabled]
        if not serving:
            continue
        name = slug if not names else f"{slug}/{position}-{target.model}"
        used.add(name)
        names.append((name, target))
        for order, account in enumerate(serving, start=1):
            deployment_params = params(account, target.model)
            if pool is not None:
                deployment_params["order"] = order
            model_list.append(
                {
                    "model_name": name,
                    "litellm_params": deployment_params,
                    "model_info": {"id": f"route-{route.id.removeprefix('route:')}-{position}-{account.id}"},
                }
            )
    return names


def _larger_windows(
    placed: Sequence[tuple[str, RouteTarget]], windows: Mapping[tuple[str, str], int | None]
) -> list[str]:
    """The later targets a context too long for the first one moves to, as the app's routes move
    it: those with a larger window than the first's. A window not known (on either side) does
    not rule a target out: the proxy tries it and moves on if it is too small."""
    (_name, first), *rest = placed
    size = windows.get((first.target_id, first.model))
    return [
        name
        for name, target in rest
        if size is None or (window := windows.get((target.target_id, target.model))) is None or window > size
    ]


def env_vars_to_set(settings: Settings, config: Mapping[str, Any]) -> dict[str, str]:
    """Each environment variable `config` reads at start-up -> what the user puts in it.

    The master key first, then the account keys in account order.
    """
    wanted: dict[str, str] = {}
    master_key = str(config.get("general_settings", {}).get("master_key", ""))
    if master_key.startswith(ENV_REFERENCE):
        wanted[master_key.removeprefix(ENV_REFERENCE)] = (
            "the proxy's master key, a secret you choose that its clients send"
        )
    referenced = {
        str(value).removeprefix(ENV_REFERENCE)
        for deployment in config["model_list"]
        for value in deployment["litellm_params"].values()
        if str(value).startswith(ENV_REFERENCE)
    }
    env_names = env_var_names(settings)
    for account in settings.accounts:
        for var, what in _secret_vars(account, env_names[account.id], session_token=True).values():
            if var in referenced:
                wanted[var] = what
    return wanted


def config_text(settings: Settings, config: Mapping[str, Any]) -> str:
    """`config` as config.yaml text, headed by the environment variables to set."""
    import yaml  # only needed when exporting; PyYAML comes with LiteLLM

    header = [
        "# LiteLLM Proxy config written by ModelDesk. It holds no keys: set these environment",
        "# variables before starting the proxy (litellm --config this-file):",
    ]
    header += [f"#   {name}  ({what})" for name, what in env_vars_to_set(settings, config).items()]
    body = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def export_proxy_config(
    settings: Settings,
    models: Mapping[str, Sequence[str]],
    *,
    keyed: Collection[str] | None = None,
    session_tokens: Collection[str] = (),
    windows: Mapping[tuple[str, str], int | None] | None = None,
) -> str:
    """The LiteLLM Proxy config.yaml text for the enabled accounts and their pools.

    models: account id (or pool id) -> the models to export for it.
    keyed: ids of the accounts that have a key (so get `api_key: os.environ/<NAME>`); by default the
    accounts whose provider requires one. Accounts without a key get no api_key.
    session_tokens: ids of the AWS accounts whose stored credentials hold a session token.
    windows: (target id, model) -> its context window, for the routes' context-window fallbacks.
    """
    config = proxy_config(settings, models, keyed=keyed, session_tokens=session_tokens, windows=windows)
    return config_text(settings, config)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def write_proxy_config(path: Path | str, text: str) -> None:
    """Write the config atomically (temp file + rename in the same directory), off the loop."""
    await asyncio.to_thread(_write_atomic, Path(path), text)
