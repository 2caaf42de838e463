"""Tagline's GUI-free engine: project store, encoders, fused classifier, command line.

Nothing in this package imports Qt; heavy libraries (torch, timm, onnxruntime) are imported
inside the functions that need them so that importing `core` stays cheap.
"""

__version__ = "0.1.0"
