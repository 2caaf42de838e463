"""Before Qt starts: the X11 libraries Qt's xcb platform plugin needs but does not ship.

A fresh Debian or Ubuntu desktop lacks three of them, and then Qt aborts with a message about
the "xcb" plugin that does not say what to install; here the person gets the one install line.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}


def uses_xcb() -> bool:
    """Qt will pick its X11 plugin: asked for, or a Linux session without Wayland."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.startswith("xcb")
    return not os.environ.get("WAYLAND_DISPLAY")


def missing_xcb_packages() -> list[str]:
    """Debian package names of the libraries that neither the system nor the bundle has."""
    if not uses_xcb():
        return []
    bundle = Path(getattr(sys, "_MEIPASS", "")) if getattr(sys, "frozen", False) else None
    missing = []
    for library, package in XCB_LIBRARIES.items():
        if ctypes.util.find_library(library):
            continue
        if bundle is not None and any(bundle.rglob(f"lib{library}.so*")):
            continue
        missing.append(package)
    return missing


def install_hint(packages: list[str]) -> str:
    return (f"Tagline's window needs Qt's X11 libraries, missing here: {', '.join(packages)}.\n"
            f"Install them with:  sudo apt install {' '.join(packages)}\n"
            f"(then start Tagline again; the command line works without them)")
