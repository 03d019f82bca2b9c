"""Render docs/screenshot.png: the real main window with a seeded conversation (--pane=Compare: a
stored 3-column comparison; --pane=Reasoning: a reasoning fold and JSON checks; --pane=Tools: a
function call answered and the final reply; --pane=Discover: Hugging Face search, fit badges and
downloads; --pane=OrgUsage: the providers' own figures beside the ledger, from the Anthropic Admin
API twin; --pane=Search: the history searched; --pane=Routes: the Routes tab with a route;
--pane=FirstRun: docs/first-run.png, the welcome's local model offer under way; --theme=light/dark).

Run under a display (`make screenshot` uses Xvfb). The data is seeded through the app's own
stores into a throwaway MODELDESK_HOME; nothing is drawn by hand.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTION = "How do I read a GGUF file's metadata in Python without loading the tensors?"
ANSWER = """Use the **`gguf`** package: its reader maps the file and parses only the header.

1. Install it with `pip install gguf`.
2. Open the file and walk the key/value fields.
3. Skip the big tokenizer arrays unless you need them.

```python
from gguf import GGUFReader

reader = GGUFReader("gemma3-270m-q4_k_m.gguf")
for name, field in reader.fields.items():
    if not name.startswith("tokenizer."):
        print(name, field.parts[field.data[0]])
```

The header holds the architecture, the context length and the quantisation type."""


async def seed(home: Path, pane: str = "Chat", theme: str = "system") -> None:
    from desktop_app.domain.accounts import Account
    from desktop_app.domain.chat import ChatParams, ReplyMetrics
    from desktop_app.domain.settings import Settings
    from desktop_app.services.accounts.catalog import ModelCatalog
    from desktop_app.services.chat.conversations import ConversationStore
    from desktop_app.services.paths import AppPaths
    from desktop_app.services.settings_store import SettingsStore

    paths = AppPaths.from_environment().ensure()
    local = Account(provider_id="llamacpp", label="Local gemma", base_url="http://127.0.0.1:8080/v1", colour="#16a34a")
    claude = Account(
        provider_id="anthropic",
        label="Claude, work",
        base_url=os.environ.get("MODELDESK_SHOT_ADMIN_URL"),  # --pane=OrgUsage: the admin twin
        colour="#d97706",
        organization_id="org-7f3a9c21",
        daily_budget_usd=5.0,
    )
    personal = Account(provider_id="anthropic", label="Claude, personal", colour="#2563eb")
    from desktop_app.domain.pools import Pool

    pool = Pool(label="Claude pool", provider_id="anthropic", account_ids=(claude.id, personal.id))
    from desktop_app.domain.routes import Route, RouteTarget

    routes = [
        Route(
            label="private-first",
            targets=(
                RouteTarget(target_id=local.id, model="gemma"),
                RouteTarget(target_id=pool.id, model="claude-sonnet-4-5"),
                RouteTarget(target_id=personal.id, model="claude-haiku-4-5"),
            ),
        )
    ]
    SettingsStore(paths.settings_file).save(
        Settings(
            accounts=[claude, personal, local],
            pools=[pool],
            routes=routes if pane == "Routes" else [],
            env_import_offered=True,
            theme=theme,
            health_check_minutes=5 if pane == "Routes" else 0,
        )
    )
    import httpx

    async with httpx.AsyncClient() as http:
        catalog = ModelCatalog(http=http, cache_file=paths.model_cache_file)
        catalog._remember(local.id, ("gemma",))  # as a Refresh would have stored it
        catalog._remember(claude.id, ("claude-haiku-4-5", "claude-sonnet-4-5"))
        catalog._remember(personal.id, ("claude-haiku-4-5", "claude-sonnet-4-5"))
    store = ConversationStore(paths.database_file)
    await store.open()
    await store.create_conversation(
        title="Ideas for the release notes", account_id=claude.id, model="claude-sonnet-4-5"
    )
    params = ChatParams(system_prompt="You are a concise Python expert.", temperature=0.3, max_tokens=512)
    conv = await store.create_conversation(
        title="Reading GGUF metadata", account_id=local.id, model="gemma", params=params
    )
    await store.add_message(conv.id, role="user", content=QUESTION)
    reply = await store.add_message(conv.id, role="assistant", content="", account_id=local.id, model="gemma")
    await store.update_message(
        reply.id,
        content=ANSWER,
        metrics=ReplyMetrics(ttft_s=0.071, tokens_per_s=63.4, prompt_tokens=41, completion_tokens=187, latency_s=3.02),
    )
    if pane == "Branches":
        await seed_branches(store, local.id)
    if pane == "Vision":
        from scripts.screenshot_panes import seed_vision

        await seed_vision(store, paths, claude.id)
    if pane == "Reasoning":
        from scripts.screenshot_reasoning import seed_reasoning

        await seed_reasoning(store, claude.id)
    if pane == "Tools":
        from scripts.screenshot_tools import seed_tools

        await seed_tools(store, claude.id)
    if pane == "Search":
        from scripts.screenshot_search import seed_search

        await seed_search(store, local.id)
    if pane == "Compare":
        from scripts.screenshot_panes import seed_comparison

        await seed_comparison(store, claude.id, personal.id, local.id)
    await store.close()
    await seed_usage(paths, {claude.id: 1.0, personal.id: 0.6, local.id: 2.5})


async def seed_branches(store, account_id: str) -> None:
    """A conversation whose reply was regenerated twice (the second version shown) and whose next
    question was edited once: the turns show "‹ 2/3 ›" and "‹ 2/2 ›"."""
    from desktop_app.domain.chat import ReplyMetrics

    conv = await store.create_conversation(title="Naming a command-line flag", account_id=account_id, model="gemma")
    question = await store.add_message(
        conv.id, role="user", content="Suggest a name for a flag that makes the tool ignore its cache."
    )
    metrics = ReplyMetrics(ttft_s=0.064, tokens_per_s=71.2, prompt_tokens=28, completion_tokens=46, latency_s=0.71)

    async def reply(parent: int, text: str) -> int:
        message = await store.add_message(
            conv.id, role="assistant", content=text, account_id=account_id, model="gemma", parent_id=parent
        )
        await store.update_message(message.id, metrics=metrics)
        return message.id

    await reply(question.id, "`--no-cache`: it says what it does, and matches `pip` and `docker build`.")
    shown = await reply(
        question.id,
        "`--fresh`: short and friendly. If the tool already has `--no-*` flags, prefer `--no-cache`"
        " so the family stays consistent.",
    )
    await reply(question.id, "`--skip-cache`, or `--refresh` if the cache should be rebuilt as well.")
    await store.show_version(shown)
    first = await store.add_message(conv.id, role="user", content="And a short form?")
    await reply(first.id, "`-f` is usually taken by `--force`; `-F` is a safer choice.")
    edited = await store.add_message(
        conv.id, role="user", content="And a one-letter short form that is rarely taken?", parent_id=shown
    )
    await reply(edited.id, "`-N` (for *no cache*) is rarely used by other flags, and easy to remember.")


async def seed_usage(paths, weights: dict[str, float]) -> None:
    """Ten days of requests, as the dispatcher would have recorded them."""
    import random
    import time

    from desktop_app.domain.usage import UsageRecord
    from desktop_app.services.accounts.usage import UsageStore

    usage = UsageStore(paths.data_dir / "usage.sqlite3")
    await usage.open()
    rng = random.Random(7)
    now = time.time()
    for day in range(10):
        for account_id, weight in weights.items():
            for _ in range(rng.randint(2, 6)):
                prompt, completion = int(rng.randint(300, 2500) * weight), int(rng.randint(200, 1800) * weight)
                local = weight > 2
                await usage.record(
                    UsageRecord(
                        at=now - day * 86400 - rng.randint(0, 3600),
                        account_id=account_id,
                        model="gemma" if local else "claude-sonnet-4-5",
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        cost_usd=None if local else (prompt * 3 + completion * 15) / 1e6,
                        latency_s=2.0,
                        ttft_s=0.3,
                        status="ok",
                        error_kind="",
                    )
                )
    await usage.close()


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith(("--pane=", "--theme="))]
    pane = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--pane=")), "Chat")
    theme = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--theme=")), "system")
    default = REPO / "docs" / ("first-run.png" if pane == "FirstRun" else "screenshot.png")
    out = Path(args[0] if args else default).resolve()
    home = Path(tempfile.mkdtemp(prefix="modeldesk-shot-"))
    from contextlib import ExitStack

    from scripts.screenshot_panes import stage_compare, stage_llamacpp, stage_ollama, start_ollama_servers

    servers = ExitStack()
    if pane == "Ollama":
        start_ollama_servers(servers)
    if pane == "OrgUsage":
        from scripts.screenshot_org import start_admin_twin

        start_admin_twin(servers)
    if pane == "Discover":
        from scripts.screenshot_discover import start_hub

        start_hub(servers, home)
    if pane == "FirstRun":
        from scripts.screenshot_first_run import start_first_run_twins

        start_first_run_twins(servers)
    os.environ["MODELDESK_HOME"] = str(home)
    asyncio.run(seed(home, pane, theme))

    import keyring
    import qasync
    from keyring.backends.fail import Keyring as NoKeyring
    from PySide6.QtWidgets import QApplication

    from desktop_app.app import ModelDeskApp
    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.paths import AppPaths

    keyring.set_keyring(NoKeyring())  # never touch the real keyring for a screenshot
    qt_app = QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)

    async def shoot() -> None:
        app = ModelDeskApp(
            paths=AppPaths.from_environment(), secrets=SecretStore(backend=NoKeyring()), offer_env_import=False
        )
        app.window.resize(1360, 820)
        app.window.show()
        await app.start()
        app.window.banner.setVisible(False)  # the "no keyring" notice is about this throwaway set-up
        for _ in range(100):  # let the conversation open and render
            if app.chat_pane.current_conversation is not None and app.chat_pane.transcript.character_count():
                break
            await asyncio.sleep(0.05)
        if pane == "Ollama":
            await stage_ollama(app)
        elif pane == "llama.cpp":
            await stage_llamacpp(app)
        elif pane == "Compare":
            await stage_compare(app)
        elif pane == "Discover":
            from scripts.screenshot_discover import stage_discover

            await stage_discover(app)
        elif pane == "OrgUsage":
            from scripts.screenshot_org import stage_org

            await stage_org(app)
        elif pane == "Reasoning":
            from scripts.screenshot_reasoning import stage_reasoning

            await stage_reasoning(app)
        elif pane == "Tools":
            from scripts.screenshot_tools import stage_tools

            await stage_tools(app)
        elif pane == "Search":
            from scripts.screenshot_search import stage_search

            await stage_search(app)
        elif pane == "Routes":  # the routes tab with a route; the local server found down by a health check
            app.states.set_down(app.accounts.accounts[2].id, "Could not connect to 127.0.0.1:8080.")
            app.window.show_pane("Accounts")
            app.accounts_pane.tabs.setCurrentIndex(2)
            app.accounts_pane.routes_editor.targets_list.setCurrentRow(0)
        elif pane == "Vision":  # a file attached to the next message, waiting in the tray
            await app.chat_pane.attachment_tray.add_data(b"quarter,units\nQ1,120\nQ2,210\n", "figures.csv")
        elif pane not in ("Chat", "Branches", "Vision", "Reasoning", "Tools", "Search", "Routes", "FirstRun"):
            accounts = app.accounts.accounts
            app.states.record_headers(
                accounts[0].id,
                {
                    "anthropic-ratelimit-requests-limit": "50",
                    "anthropic-ratelimit-requests-remaining": "47",
                    "anthropic-ratelimit-tokens-limit": "40000",
                    "anthropic-ratelimit-tokens-remaining": "36200",
                },
            )
            app.states.cool_down(accounts[1].id, 42)
            app.window.show_pane(pane)
        shown = app.window
        if pane == "FirstRun":
            from scripts.screenshot_first_run import stage_first_run

            shown = await stage_first_run(app)
        await asyncio.sleep(0.5)
        out.parent.mkdir(parents=True, exist_ok=True)
        shown.grab().save(str(out))
        await app.aclose()

    with servers, loop:
        loop.run_until_complete(shoot())
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
