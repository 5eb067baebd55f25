"""Inference library of ClassMood: numpy, OpenCV and onnxruntime only (no PyTorch)."""
