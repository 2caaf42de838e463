"""The labelling engine: a classifier, learning it from decisions, suggestions, evaluation."""
