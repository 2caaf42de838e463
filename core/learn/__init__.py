"""Heads and their training: the fused head, the capacity ladder, metrics and thresholds."""
