"""Photos on disk: the folder walk, safe decoding, the decode thread pool."""
