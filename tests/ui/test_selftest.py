"""`--self-test`, run the way a user (or `make package-check`) runs it: in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = "from desktop_app.selftest import run_self_test; raise SystemExit(run_self_test())"


def self_test(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MODELDESK_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_the_self_test_passes_and_leaves_the_users_files_alone(tmp_path: Path) -> None:
    home = tmp_path / "users-own-home"
    result = self_test(RUN, home)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ModelDesk ") and lines[0].endswith(" self-test")
    checks = {line.split(":", 1)[0].split(maxsplit=1)[1]: line.split(maxsplit=1)[0] for line in lines[1:-1]}
    assert checks == dict.fromkeys(
        (
            "Qt",
            "icon",
            "main window",
            "stores",
            "LiteLLM",
            "price map",
            "tokenizer",
            "chat",
            "keyring",
            "shutdown",
            "Qt warnings",
        ),
        "ok",
    )
    assert lines[-1] == "Self-test passed."
    assert not home.exists()  # its own throw-away home, never the one it was given


def test_a_failing_check_exits_1_with_its_sentence(tmp_path: Path) -> None:
    broken = "import desktop_app.ui.theme as theme; theme.resources_dir = lambda: None; " + RUN
    result = self_test(broken, tmp_path / "home")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  icon: the resources folder (icons) is missing." in result.stdout
    assert result.stdout.splitlines()[-1] == "Self-test failed: icon: the resources folder (icons) is missing."
