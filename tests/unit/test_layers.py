"""The layer rules hold: domain <- services <- ui, a Qt-free core, and no LiteLLM at start-up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: nothing is written into the working tree.
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter: nothing this test session imported is loaded there."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_contracts_catch_qt_in_the_core(tmp_path: Path) -> None:
    # The same contracts over a copy whose services import Qt: they must fail, or they prove nothing.
    shutil.copytree(REPO_ROOT / "desktop_app", tmp_path / "desktop_app", ignore=shutil.ignore_patterns("__pycache__"))
    logs = tmp_path / "desktop_app" / "services" / "logs.py"
    logs.write_text(logs.read_text("utf-8") + "\nfrom PySide6 import QtCore  # noqa\n", "utf-8")

    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "The core stays Qt-free BROKEN" in result.stdout
    assert "desktop_app.services.logs -> PySide6" in result.stdout


CORE_IMPORTS = """
import importlib, pkgutil, sys
import desktop_app.domain, desktop_app.services
names = []
for package in (desktop_app.domain, desktop_app.services):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
assert "desktop_app.services.chat.llm" in names and "desktop_app.services.chat.service" in names, names
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"PySide6", "shiboken6", "qasync", "litellm"})
print(len(names), loaded)
"""


def test_the_core_imports_neither_qt_nor_litellm() -> None:
    result = python(CORE_IMPORTS)
    assert result.returncode == 0, result.stderr
    count, loaded = result.stdout.split(" ", 1)
    assert int(count) >= 10
    assert loaded.strip() == "[]"


def test_the_composition_root_does_not_pay_for_litellm_at_import() -> None:
    result = python(
        "import sys\n"
        "import desktop_app.app, desktop_app.services.chat.llm, desktop_app.services.chat.service\n"
        "import desktop_app.services.litellm_engine\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "assert 'openai' not in sys.modules, 'openai was imported'\n"
        "import desktop_app.services.local.ollama\n"
        "assert 'ollama' not in sys.modules, 'the ollama client (~14 MB) was imported'\n"
    )
    assert result.returncode == 0, result.stderr
