"""Model export (ONNX) with a JSON sidecar holding label names and preprocessing. See ``docs/inference.md``."""
