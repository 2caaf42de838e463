"""Encoders and model folders: the registry, ONNX sessions, embeddings, model files."""
