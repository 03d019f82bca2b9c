"""The user's side of the X display: start `python -m desktop_app` and use it with real X input.

Keys, typing and clicks go through xdotool (the XTEST extension: the X server takes them as a
keyboard's and a mouse's). The e2e display (Xvfb) runs no window manager, so this module does the
two things a window manager would do for the user: give the window the input focus
(XSetInputFocus, as a click-to-focus manager does), and close it as its title-bar button does, by
sending WM_DELETE_WINDOW (ICCCM 4.2.8.1). `xdotool windowclose` would destroy the window under
the app instead, which no user can do.

The window's layout is fixed (1280x800 at the top left, no frame), so a widget without a key is
reached by a click at its place in `SPOTS`; each click is checked by its effect (on disk, or
on the loopback server).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TITLE = "ModelDesk"

# Window coordinates of the widgets reached by the mouse, with the keyring notice shown (the
# tests run without a keyring) and, for the chat pane, no model listed yet.
SPOTS = {
    "refresh models": (942, 110),  # chat pane, beside the model picker
    "composer": (620, 715),  # chat pane, bottom
    "pull name": (940, 533),  # Ollama pane, "Pull a model"
}


def xdotool(*args: str, timeout: float = 30.0) -> str:
    result = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"xdotool {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


class AppProcess:
    """`python -m desktop_app` with its own MODELDESK_HOME; stdout and stderr kept in files."""

    def __init__(self, home: Path, *, ollama_url: str = "") -> None:
        self.home = home
        env = dict(
            os.environ,
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            MODELDESK_HOME=str(home),
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        if ollama_url:
            env["OLLAMA_HOST"] = ollama_url
        self._out = (home.parent / "app-stdout.txt").open("w+")
        self._err = (home.parent / "app-stderr.txt").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "desktop_app"], cwd=REPO_ROOT, env=env, stdout=self._out, stderr=self._err, text=True
        )
        self.window = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def find_window(self) -> str:
        """The main window's X id, once it is mapped (xdotool waits for it)."""
        found = xdotool(
            "search", "--sync", "--onlyvisible", "--pid", str(self.pid), "--name", f"^{TITLE}$", timeout=120
        )
        self.window = found.split()[-1]
        return self.window

    def visible_windows(self) -> list[str]:
        """The app's mapped top-level X windows (the main window, an open menu...)."""
        result = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--pid", str(self.pid), "--name", ""],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout.split()

    def focus(self) -> None:
        xdotool("windowfocus", "--sync", self.window)

    def key(self, keys: str) -> None:
        xdotool("key", "--clearmodifiers", keys)

    def type(self, text: str) -> None:
        xdotool("type", "--clearmodifiers", "--delay", "5", text)

    def click(self, spot: str) -> None:
        x, y = SPOTS[spot]
        xdotool("mousemove", "--sync", "--window", self.window, str(x), str(y), "click", "1")

    def close_window(self) -> None:
        """What the window manager sends when the user clicks the title bar's close button."""
        send_wm_delete_window(int(self.window, 0))

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def stderr(self) -> str:
        self._err.flush()
        return Path(self._err.name).read_text("utf-8", errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()
        self._out.close()
        self._err.close()


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def send_wm_delete_window(window: int) -> None:
    """A WM_PROTOCOLS/WM_DELETE_WINDOW client message to `window` on $DISPLAY (libX11)."""
    xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        raise RuntimeError(f"cannot open the X display {os.environ.get('DISPLAY')!r}")
    try:
        event = _XEvent()
        message = event.xclient
        message.type = 33  # ClientMessage
        message.window = window
        message.message_type = xlib.XInternAtom(display, b"WM_PROTOCOLS", 0)
        message.format = 32
        message.data[0] = xlib.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        message.data[1] = 0  # CurrentTime
        if not xlib.XSendEvent(display, window, 0, 0, ctypes.byref(event)):
            raise RuntimeError("XSendEvent could not send WM_DELETE_WINDOW")
        xlib.XFlush(display)
    finally:
        xlib.XCloseDisplay(display)
