"""The Linux desktop entry, the AppStream metadata and the icons, checked by the real validators.

`desktop-file-validate` (desktop-file-utils) and `appstreamcli` (appstream) are system tools; a test
that needs one is skipped when it is missing, unless MODELDESK_REQUIRE_VALIDATORS=1 (as `make test`
sets), which turns a missing validator into a failure.
"""

from __future__ import annotations

import configparser
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from desktop_app import __version__

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "io.github.modeldesk.ModelDesk"
DESKTOP_FILE = ROOT / "packaging" / "linux" / f"{APP_ID}.desktop"
METAINFO_FILE = ROOT / "packaging" / "linux" / f"{APP_ID}.metainfo.xml"
ICONS = ROOT / "resources" / "icons" / "hicolor"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def validator(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("MODELDESK_REQUIRE_VALIDATORS") == "1":
            pytest.fail(f"{name} is not installed (apt-get install desktop-file-utils appstream)")
        pytest.skip(f"{name} is not installed")
    return path


def test_desktop_file_passes_desktop_file_validate() -> None:
    result = subprocess.run(
        [validator("desktop-file-validate"), str(DESKTOP_FILE)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in result.stdout.splitlines() if ": error: " in line or ": warning: " in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def test_metainfo_passes_appstreamcli_validate() -> None:
    result = subprocess.run(
        [validator("appstreamcli"), "validate", "--no-net", str(METAINFO_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_desktop_entry_says_what_the_launcher_needs() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP_FILE, encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "ModelDesk"
    assert entry["Exec"] == "modeldesk"  # the console script pyproject.toml installs
    assert entry["Icon"] == "modeldesk" and entry["Terminal"] == "false"
    assert entry["Categories"] == "Development;Utility;"
    assert entry["StartupWMClass"] == "ModelDesk"  # Qt's X11 class is the application name
    assert entry["GenericName"] and entry["Comment"] and entry["Keywords"].endswith(";")


def test_metainfo_matches_the_app() -> None:
    root = ET.parse(METAINFO_FILE).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("metadata_license") == "CC0-1.0" and root.findtext("project_license") == "MIT"
    launchable = root.find("launchable")
    assert launchable is not None and launchable.text == DESKTOP_FILE.name
    assert root.findtext("provides/binary") == "modeldesk"
    assert root.find("content_rating") is not None
    release = root.find("releases/release")
    assert release is not None and (release.get("version"), release.get("date")) == (__version__, "2026-11-22")
    images = [image.text for image in root.iter("image")]
    assert images and all(url.startswith("https://raw.githubusercontent.com/modeldesk/modeldesk/") for url in images)
    for url in images:  # each screenshot the metadata points at is in the repository
        assert (ROOT / url.split("/main/", 1)[1]).is_file(), url


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_every_icon_size_is_rendered_from_the_svg() -> None:
    for size in SIZES:
        assert png_size(ICONS / f"{size}x{size}" / "apps" / "modeldesk.png") == (size, size)
    scalable = ICONS / "scalable" / "apps" / "modeldesk.svg"
    assert scalable.read_bytes() == (ROOT / "resources" / "modeldesk.svg").read_bytes()
    assert ET.parse(scalable).getroot().tag == "{http://www.w3.org/2000/svg}svg"
