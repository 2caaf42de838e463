"""Tagline's GUI-free engine: project store, encoders, fused classifier, command line.

Nothing in this package imports Qt; heavy libraries (torch, timm, onnxruntime) are imported
inside the functions that need them so that importing `core` stays cheap.
"""

__version__ = "0.1.0"

import os as _os

# onnxruntime's Linux and macOS wheels send usage events and keep a device id in the user's
# cache unless this is set before it is first imported; a labelling tool reports nothing.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
