"""Where ModelDesk keeps its files, and the two careful ways it writes and retires them."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import platformdirs

APP_NAME = "ModelDesk"
HOME_ENV_VAR = "MODELDESK_HOME"  # relocates every directory below one root (tests, portable installs)


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @classmethod
    def from_environment(cls) -> AppPaths:
        home = os.environ.get(HOME_ENV_VAR, "").strip()
        if home:
            return cls.under(Path(home).expanduser())
        return cls(
            config_dir=platformdirs.user_config_path(APP_NAME, appauthor=False),
            data_dir=platformdirs.user_data_path(APP_NAME, appauthor=False),
            cache_dir=platformdirs.user_cache_path(APP_NAME, appauthor=False),
            log_dir=platformdirs.user_log_path(APP_NAME, appauthor=False),
        )

    @classmethod
    def under(cls, home: Path) -> AppPaths:
        return cls(
            config_dir=home / "config",
            data_dir=home / "data",
            cache_dir=home / "cache",
            log_dir=home / "log",
        )

    def ensure(self) -> AppPaths:
        """Create the directories, readable by this user only; returns self for chaining."""
        for directory in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask and ignored for existing directories.
            os.chmod(directory, 0o700)
        return self

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def state_file(self) -> Path:
        # Window geometry and the like: rewritten often, worthless if lost, so kept apart from
        # the durable settings.
        return self.config_dir / "window-state.json"

    @property
    def presets_file(self) -> Path:
        # Named sets of chat parameters (system prompt, sampling, response format).
        return self.config_dir / "presets.json"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @property
    def unsaved_replies_file(self) -> Path:
        # Replies the history database still refused at quit; written to it at the next start.
        return self.data_dir / "unsaved-replies.json"

    @property
    def composer_draft_file(self) -> Path:
        # What was typed and not sent when ModelDesk quit; back in the composer at the next start.
        return self.data_dir / "composer-draft.json"

    @property
    def attachments_dir(self) -> Path:
        # Attached files, one per SHA-256 of what was sent; messages refer to them by that digest.
        return self.data_dir / "attachments"

    @property
    def model_cache_file(self) -> Path:
        return self.cache_dir / "models.json"


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves either the old file or the new one.

    The bytes go to a temporary file in the same directory (so the rename cannot cross file
    systems), are flushed and fsynced, and only then renamed over the target.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a directory this way.
    if sys.platform == "win32":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def move_aside(path: Path, *, now: datetime | None = None) -> Path:
    """Rename an unreadable file to `<name>.corrupt-YYYYmmdd-HHMMSS` (never over another one).

    Returns the new path. The bytes are kept untouched so the user (or a bug report) can
    recover them.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 2
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    return target
