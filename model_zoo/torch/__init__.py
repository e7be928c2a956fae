"""PyTorch architectures (nets.py) exported to ONNX by the tests at run time."""
