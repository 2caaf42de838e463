"""The project store (SQLite): schema and migrations, the rescan, the labelling rule."""
