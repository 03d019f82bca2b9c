"""scripts/system-deps.sh: what it finds, says and would install, run for real on this machine and
in a PATH that lacks the tools (no package is installed by these tests: --check and --dry-run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "system-deps.sh"
# What the script itself runs; everything else is missing from the reduced PATH.
BASICS = ("bash", "basename", "awk", "find", "id", "env", "cat", "uname")


def _run(*args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if name != "MODELDESK_SYSTEM_DEPS"}
    environ.update(env)
    if path is not None:
        environ["PATH"] = path
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _bin(tmp_path: Path, *tools: str) -> str:
    """A PATH of one folder holding only ``tools`` (links to this machine's own)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not on this machine")
        (folder / tool).symlink_to(found)
    return str(folder)


def test_this_machine_has_everything_the_suite_needs() -> None:
    # `make test` ran the script before this suite: nothing is missing, nothing gets installed.
    result = _run("--check", "test", "package")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("System packages for test, package: all ")
    assert result.stderr == ""


def test_a_dry_run_lists_what_is_missing_and_the_one_install_command(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("an apt-get machine")
    path = _bin(tmp_path, *BASICS, "apt-get", "dpkg")

    result = _run("--dry-run", "test", path=path, PYTHON="python3")

    assert result.returncode == 0, result.stderr
    said = result.stderr
    assert "ModelDesk (test) needs" in said
    for package, why in (
        ("xvfb", "virtual X display"),
        ("gnome-keyring", "Secret Service"),
        ("cmake", "llama-server"),
        ("python3-venv", "venv"),
    ):
        assert any(line.split()[0] == package and why in line for line in said.splitlines()), package
    commands = [line.strip() for line in result.stdout.splitlines() if "apt-get" in line]
    assert len(commands) == 2 and commands[0].endswith("apt-get update -qq")
    install = commands[1].split()
    assert install[install.index("install") :][:5] == ["install", "-y", "-qq", "--no-install-recommends", "python3"]
    assert install.count("dbus") == 1  # two probes, one package
    assert ("sudo" in install) == (os.geteuid() != 0)


def test_check_says_the_command_and_stops(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("an apt-get machine")
    path = _bin(tmp_path, *BASICS, "apt-get", "dpkg")

    result = _run("--check", "test", path=path)
    assert result.returncode == 2
    assert "Install them with:" in result.stderr and "apt-get install" in result.stderr

    # The same as an install refused by the environment: make never installs then.
    result = _run("test", path=path, MODELDESK_SYSTEM_DEPS="check")
    assert result.returncode == 2 and "Install them with:" in result.stderr


def test_on_fedora_dnf_installs_what_provides_each_missing_command(tmp_path: Path) -> None:
    path = _bin(tmp_path, *BASICS)
    # A dry run only looks dnf up; it never runs it.
    (Path(path) / "dnf").symlink_to(shutil.which("true") or "/bin/true")

    result = _run("--dry-run", "test", path=path)

    assert result.returncode == 0, result.stderr
    assert "xorg-x11-server-Xvfb" in result.stderr and "gcc-c++" in result.stderr
    install = next(line for line in result.stdout.splitlines() if "dnf install" in line).split()
    assert install[install.index("install") :][:2] == ["install", "-y"]
    assert "/usr/bin/xvfb-run" in install and "/usr/bin/gnome-keyring-daemon" in install
    assert "apt-get" not in result.stdout


def test_without_a_package_manager_it_prints_the_exact_list_and_stops(tmp_path: Path) -> None:
    path = _bin(tmp_path, *BASICS)

    result = _run("test", path=path)  # no apt-get/dnf to run: it can only say

    assert result.returncode == 2
    assert "neither apt-get nor dnf" in result.stderr
    assert any(
        "cmd:xvfb-run" in line and "xvfb" in line and "xorg-x11-server-Xvfb" in line
        for line in result.stderr.splitlines()
    )


def test_a_wrong_argument_is_refused() -> None:
    result = _run("everything")
    assert result.returncode == 64 and "usage:" in result.stderr
