"""The diagnostics report and the log controls: no key, in any shape, from any source, gets through."""

from __future__ import annotations

import logging
import random
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from desktop_app import __version__
from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.diagnostics import collect_diagnostics, safe_url, scrub
from desktop_app.services.log_control import (
    RecentErrors,
    ScrubFilter,
    install,
    set_debug,
)
from desktop_app.services.paths import AppPaths

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def _random(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _mixed(rng: random.Random, length: int) -> str:
    """Random letters and digits with at least one capital, one small letter and one digit."""
    while True:
        value = _random(rng, ALNUM, length)
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


# Each shape: (name, make(rng) -> (key, the part of it that is secret)). The prefix of a key
# ("sk-ant-", "AIza") may stay visible; nothing of the rest may.
KeyMaker = Callable[[random.Random], tuple[str, str]]


def _prefixed(prefix: str, alphabet: str, lengths: tuple[int, int]) -> KeyMaker:
    def make(rng: random.Random) -> tuple[str, str]:
        body = _random(rng, alphabet, rng.randint(*lengths))
        return prefix + body, body

    return make


def _mistral(rng: random.Random) -> tuple[str, str]:
    key = _mixed(rng, 32)
    return key, key


def _jwt(rng: random.Random) -> tuple[str, str]:
    body = f"{_random(rng, URLSAFE, 30)}.{_random(rng, URLSAFE, 40)}"
    return f"eyJhbGciOiJIUzI1NiJ9.{body}", body


SHAPES: dict[str, KeyMaker] = {
    "openai": _prefixed("sk-", ALNUM, (40, 60)),
    "openai-project": _prefixed("sk-proj-", URLSAFE, (40, 140)),
    "anthropic": _prefixed("sk-ant-api03-", URLSAFE, (80, 100)),
    "openrouter": _prefixed("sk-or-v1-", HEX, (64, 64)),
    "deepseek": _prefixed("sk-", HEX, (32, 32)),
    "litellm-proxy": _prefixed("sk-", URLSAFE, (12, 24)),
    "gemini": _prefixed("AIza", URLSAFE, (35, 35)),
    "groq": _prefixed("gsk_", ALNUM, (52, 52)),
    "xai": _prefixed("xai-", ALNUM, (60, 80)),
    "huggingface": _prefixed("hf_", string.ascii_letters, (34, 34)),
    "mistral": _mistral,
    "jwt": _jwt,
}

# Places a key can turn up in text that ends in the report (errors, log lines).
TEXT_CONTEXTS: tuple[Callable[[str], str], ...] = (
    lambda k: f"AuthenticationError: Incorrect API key provided: {k}. You can find your API key at ...",
    lambda k: f"litellm.exceptions.AuthenticationError: {k} is not valid",
    lambda k: f"request headers: {{'Authorization': 'Bearer {k}', 'Content-Type': 'application/json'}}",
    lambda k: f"x-api-key: {k}",
    lambda k: f'body {{"api_key": "{k}", "model": "gpt-4o"}}',
    lambda k: f"GET https://generativelanguage.googleapis.com/v1beta/models?key={k}&pageSize=50 failed",
    lambda k: f"could not reach https://someone:{k}@proxy.example.com:4000/v1",
    lambda k: f"token={k};path=/",
    lambda k: f"({k})",
)


def _cases(count: int, seed: int):
    rng = random.Random(seed)
    names = sorted(SHAPES)
    for index in range(count):
        name = names[index % len(names)]
        key, secret = SHAPES[name](rng)
        yield name, key, secret, rng


def assert_no_trace(text: str, key: str, secret: str) -> None:
    assert key not in text
    assert secret not in text
    for start in range(len(secret) - 7):  # not even eight characters in a row of the secret part
        assert secret[start : start + 8] not in text, (secret, text)


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home")


@pytest.fixture
def secrets() -> SecretStore:
    return SecretStore()  # never started: the report must not need the keyring


def report(settings: Settings, secrets: SecretStore, paths: AppPaths, errors=(), environ=None) -> str:
    return collect_diagnostics(
        settings=settings, secrets=secrets, paths=paths, recent_errors=list(errors), environ=environ or {}
    )


@pytest.mark.parametrize("seed", range(4))
def test_keys_in_error_text_never_reach_the_report(seed: int, paths, secrets) -> None:
    for name, key, secret, rng in _cases(60, seed):
        context = rng.choice(TEXT_CONTEXTS)
        text = report(Settings(), secrets, paths, errors=[context(key)])
        assert_no_trace(text, key, secret)
        assert "Recent warnings and errors (1)" in text, name


@pytest.mark.parametrize("seed", range(3))
def test_keys_in_settings_never_reach_the_report(seed: int, paths, secrets) -> None:
    for _name, key, secret, rng in _cases(40, seed):
        accounts = [
            # User info in a base URL is refused now; a file from before may still hold one.
            Account.model_construct(
                **{
                    **Account(provider_id="openai_compatible", label="Gateway").model_dump(),
                    "base_url": f"https://user:{key}@gateway.example.com/v1",
                }
            ),
            Account(provider_id="openai_compatible", label="Query", base_url=f"https://q.example.com/v1?key={key}"),
            # Credential headers are refused in extra_headers now; a file from before may still hold one.
            Account.model_construct(
                **{
                    **Account(provider_id="anthropic", label="Work").model_dump(),
                    "extra_headers": {"X-Custom-Auth": key, "X-Team": _random(rng, ALNUM, 40)},
                }
            ),
            Account(provider_id="mistral", label=f"pasted into the name {key}"),
        ]
        pool = Pool(label=f"pool {key}", provider_id="anthropic", account_ids=(accounts[2].id,))
        text = report(Settings(accounts=accounts, pools=[pool]), secrets, paths)
        assert_no_trace(text, key, secret)
        assert "gateway.example.com" in text and "q.example.com/v1" in text
        assert "X-Custom-Auth" in text and "(values not shown)" in text


@pytest.mark.parametrize("seed", range(3))
def test_keys_in_the_environment_never_reach_the_report(seed: int, paths, secrets) -> None:
    for _name, key, secret, rng in _cases(40, seed):
        # Whatever its shape, the exact value of a credential variable is known and blanked;
        # this one is not shaped like any key at all.
        odd = _random(rng, string.ascii_lowercase + "!#%", 24)
        environ = {
            "OPENAI_API_KEY": key,
            "MY_SERVICE_TOKEN": odd,
            "OLLAMA_HOST": f"http://admin:{key}@gpu-box:11434",
            "HTTPS_PROXY": f"http://proxyuser:{key}@proxy.corp:3128",
            "HOME": "/home/someone",
        }
        text = report(
            Settings(), secrets, paths, errors=[f"the service said {odd}", f"retrying with {key}"], environ=environ
        )
        assert_no_trace(text, key, secret)
        assert_no_trace(text, odd, odd)
        assert "OPENAI_API_KEY" in text and "gpu-box:11434" in text and "proxy.corp:3128" in text


def test_the_report_says_what_a_bug_report_needs(paths, secrets) -> None:
    account = Account(
        provider_id="ollama", label="Local Ollama", base_url="http://127.0.0.1:11500", daily_budget_tokens=100_000
    )
    settings = Settings(accounts=[account], theme="dark")
    text = report(
        settings,
        secrets,
        paths,
        errors=["2026-11-22 10:00:00 ERROR desktop_app.chat: boom"],
        environ={"ANTHROPIC_API_KEY": "sk-ant-api03-" + "x" * 40, "XDG_SESSION_TYPE": "wayland"},
    )

    assert f"ModelDesk {__version__}" in text
    assert "Python 3." in text and "PySide6" in text and "LiteLLM" in text and "Platform" in text
    assert "backend: none" in text
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert str(folder) in text
    assert "Ollama “Local Ollama”, http://127.0.0.1:11500, enabled, budget 100,000 tokens/day" in text
    assert "theme dark" in text
    assert "provider variables set: ANTHROPIC_API_KEY" in text and "XDG_SESSION_TYPE=wayland" in text
    assert "ERROR desktop_app.chat: boom" in text


def test_no_errors_says_none(paths, secrets) -> None:
    assert "Recent warnings and errors (0)\n  none" in report(Settings(), secrets, paths)


def test_ordinary_text_survives_the_scrub() -> None:
    ordinary = (
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef; models--unsloth--gemma-3-270m-it-GGUF; "
        "keyring backend: SecretService; task-manager; Linux-6.1.0-28-amd64-x86_64-with-glibc2.36; "
        "request timeout 60 s; 12 GGUF files"
    )
    assert scrub(ordinary) == ordinary


def test_safe_url_keeps_only_where_a_server_is() -> None:
    assert safe_url("https://user:pw@Example.com:8443/v1/?key=abc#frag") == "https://example.com:8443/v1/"
    assert safe_url("http://[::1]:11434") == "http://[::1]:11434"


def test_ordinary_variables_named_like_credentials_do_not_blank_the_report(paths, secrets) -> None:
    # PWD, OLDPWD, XAUTHORITY, SSH_AUTH_SOCK, TOKENIZERS_PARALLELISM, KEYTIMEOUT: names that
    # contain "pwd", "auth", "token" or "key", values that are paths, switches and numbers.
    home = str(paths.config_dir.parent)
    environ = {
        "PWD": home,
        "OLDPWD": str(paths.data_dir),
        "XAUTHORITY": f"{home}/.Xauthority",
        "SSH_AUTH_SOCK": "/run/user/1000/keyring/ssh",
        "TOKENIZERS_PARALLELISM": "false",
        "KEYTIMEOUT": "1",
        "GIT_ASKPASS": "/usr/lib/git-core/git-gui--askpass",
        "XDG_SESSION_TYPE": "wayland",
        "MY_SERVICE_TOKEN": "x7!q#p%r2v",
    }
    account = Account(provider_id="ollama", label="Local Ollama", enabled=False)
    text = report(
        Settings(accounts=[account]),
        secrets,
        paths,
        errors=["task failed: the model name must be false or true, stopped after 1 s", "retrying with x7!q#p%r2v"],
        environ=environ,
    )

    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert f"{folder}\n" in text
    assert "Ollama “Local Ollama”, http://127.0.0.1:11434, disabled" in text
    assert "must be false or true, stopped after 1 s" in text
    assert "x7!q#p%r2v" not in text  # a credential variable's value is still blanked everywhere


# --- log controls ----------------------------------------------------------------------------------


@pytest.fixture
def logger() -> logging.Logger:
    """A private logger standing in for the root one (the test runner owns the real root)."""
    log = logging.getLogger(f"modeldesk-test-{random.random()}")
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def test_recent_errors_keeps_the_last_warnings_scrubbed(logger) -> None:
    logger.setLevel(logging.INFO)
    recent = RecentErrors(capacity=50)
    logger.addHandler(recent)
    key = "sk-ant-api03-" + _mixed(random.Random(1), 60)

    logger.info("not kept: %s", "info")
    for index in range(60):
        logger.warning("attempt %d failed with key %s", index, key)
    try:
        raise ValueError(f"Incorrect API key provided: {key}")
    except ValueError:
        logger.exception("the request failed")

    lines = recent.lines()
    assert len(lines) == len(recent) == 50
    assert "attempt 11 failed" in lines[0] and "the request failed" in lines[-1]
    assert "ValueError: Incorrect API key provided: sk-[redacted]" in lines[-1]
    assert all(key[13:21] not in line for line in lines)
    assert not any("not kept" in line for line in lines)


def test_the_log_file_never_gets_a_key(logger, tmp_path: Path) -> None:
    log_file = tmp_path / "modeldesk.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    logger.addHandler(handler)
    recent = install(logger)
    assert install(logger) is recent  # idempotent
    key = "gsk_" + _mixed(random.Random(2), 52)

    logger.error("Groq said no to %s", key)
    try:
        raise RuntimeError(f"headers={{'Authorization': 'Bearer {key}'}}")
    except RuntimeError:
        logger.exception("stream failed")
    handler.flush()

    written = log_file.read_text(encoding="utf-8")
    assert "Groq said no to gsk_[redacted]" in written and "stream failed" in written
    assert "Traceback" in written and "Bearer [redacted]" in written
    assert key[4:12] not in written
    assert any(isinstance(f, ScrubFilter) for f in handler.filters)
    assert len(recent) == 2


def test_set_debug_switches_levels_at_run_time(logger, tmp_path: Path) -> None:
    handler = logging.FileHandler(tmp_path / "modeldesk.log", encoding="utf-8")
    logger.addHandler(handler)
    install(logger)

    set_debug(True, logger)
    assert logger.level == logging.DEBUG and handler.level == logging.DEBUG
    assert logging.getLogger("litellm").level == logging.WARNING  # may echo request headers: never DEBUG
    logger.debug("a detail")
    set_debug(False, logger)
    assert logger.level == logging.INFO and handler.level == logging.INFO
    logger.debug("not written")
    handler.flush()
    written = (tmp_path / "modeldesk.log").read_text(encoding="utf-8")
    assert "a detail" in written and "not written" not in written


def test_debug_logging_leaves_out_what_worker_threads_are_handed(tmp_path: Path) -> None:
    """qasync logs the repr of every executor call's arguments at DEBUG: a message, or the MBs of a
    download being written (which once slowed the app to a crawl). Debug logging keeps it out."""
    import qasync

    from desktop_app.services.logs import setup_logging

    setup_logging(tmp_path)  # the root logger; the test suite puts its levels and handlers back
    install()
    set_debug(True)
    payload = "what the user typed " + _mixed(random.Random(3), 24)
    with qasync.QThreadExecutor(1) as executor:
        assert executor.submit(len, payload).result() == len(payload)
    logging.getLogger("desktop_app.test").debug("a detail")
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = (tmp_path / "modeldesk.log").read_text(encoding="utf-8")
    assert "a detail" in written  # debug logging is on
    assert payload not in written and "qasync" not in written
