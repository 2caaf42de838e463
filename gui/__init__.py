"""Tagline desktop application (PySide6): a thin layer over `core`."""
