"""--pane=FirstRun for scripts/screenshot.py: the welcome's "Chat with a local model now" under way.

The loopback twins of GitHub's release API (serving an archive of the test llama-server) and of
the Hugging Face Hub (serving the test GGUF under the starter model's name) stand in for the
internet; the llama.cpp download is held past half, so the shot shows the steps' progress as
a user sees it. Nothing is drawn by hand: the offer runs its own code against the twins.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from scripts.screenshot_panes import _until


def _artifacts() -> tuple[Path, Path]:
    """The test llama-server and GGUF that `make servers` provisioned (see .cache/test-servers.env)."""
    from tests.servers.process import from_env_file

    binary = os.environ.get("MODELDESK_TEST_LLAMA_SERVER") or from_env_file("MODELDESK_TEST_LLAMA_SERVER")
    model = os.environ.get("MODELDESK_TEST_GGUF") or from_env_file("MODELDESK_TEST_GGUF")
    if not (binary and model):
        raise SystemExit("--pane=FirstRun needs the test llama-server and GGUF: run `make servers` first")
    return Path(binary), Path(model)


def start_first_run_twins(stack: ExitStack) -> Any:
    """Start the release and Hub twins (stopped with `stack`) and point the app at them; the twin
    of the releases, whose download is held at half until `release_stall()`."""
    from desktop_app.domain.starter import STARTER_MODELS
    from desktop_app.services.local.llamacpp_install import RELEASES_ENV
    from tests.servers.hf_hub import HfHubTwin
    from tests.servers.llamacpp_releases import LlamaCppReleasesTwin
    from tests.unit.engine_archives import TAG, tar_archive

    binary, model = _artifacts()
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modeldesk-shot-twins-")))
    build = binary.parent.parent
    files: dict[str, Path | bytes] = {p.name: p for p in sorted((build / "bin").iterdir()) if p.is_file()}
    if (build / "lib").is_dir():
        files.update({p.name: p for p in sorted((build / "lib").iterdir()) if p.is_file()})
    archive = tar_archive(folder / "llama.tar.gz", f"llama-{TAG}", files)
    releases = LlamaCppReleasesTwin()
    asset = releases.add(releases.release(TAG), f"llama-{TAG}-bin-ubuntu-x64.tar.gz", archive)
    releases.stall_after = asset.size * 11 // 20
    hub = HfHubTwin()
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    for starter in STARTER_MODELS:
        hub.repo(starter.repo).add(starter.file, model, digest)
    releases.start()
    stack.callback(releases.stop)
    hub.start()
    stack.callback(hub.stop)
    os.environ[RELEASES_ENV] = releases.api_url
    os.environ["HF_ENDPOINT"] = hub.base_url
    os.environ["HF_HUB_CACHE"] = str(folder / "hf-cache")
    os.environ["PATH"] = "/usr/bin:/bin"  # the shot shows llama.cpp being installed
    return releases


async def stage_first_run(app: Any) -> Any:
    """The welcome with its local-model offer clicked and llama.cpp's download under way; the dialog."""
    from desktop_app.domain.engine import Platform
    from desktop_app.domain.hub import HardwareInfo
    from desktop_app.domain.starter import pick_starter
    from desktop_app.services.local.discovery import Discovery
    from desktop_app.ui.first_run import LocalModelOffer
    from desktop_app.ui.welcome import WelcomeDialog

    async def linux_x64() -> Platform:
        return Platform("linux", "x64", ())

    # A laptop's figures, so the shot does not depend on the machine that renders it.
    pick = pick_starter(HardwareInfo(16 * 10**9, 11 * 10**9, "a laptop CPU", 4))
    assert pick is not None
    offer = LocalModelOffer(
        pick,
        engines=app.engines,
        hub=app.hub,
        downloads=app.hub_downloads,
        serve=lambda path, ctx: app.window.pane("llama.cpp").serve_for_chat(path, ctx=ctx),
        platform=linux_x64,
        path="",
    )
    dialog = WelcomeDialog(Discovery(), accounts=app.accounts, local_offer=offer, parent=app.window)
    dialog.open()
    offer.start_button.click()
    await _until(lambda: offer.engine_step.bar.value() >= 300)  # held at 55 % (the last MiB written is shown)
    await asyncio.sleep(0.3)  # the last progress snapshot painted
    dialog.adjustSize()
    return dialog
