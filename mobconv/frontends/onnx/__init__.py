"""ONNX frontend: `load_onnx(path_or_ModelProto, input_shapes=None) -> Graph`."""
from .converters import REGISTRY, claimed_ops, converter
from .loader import load_onnx

__all__ = ["load_onnx", "REGISTRY", "claimed_ops", "converter"]
