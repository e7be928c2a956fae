"""A tiny CNN for demos and quick tests (bundled as tiny_cnn.onnx, < 200 KB).

Input N x 3 x 32 x 32 (symbolic batch "N"): conv 3x3 (8) + ReLU, MaxPool 2x2,
conv 3x3 (16) + BN + ReLU, GlobalAveragePool, Flatten, Gemm (10), Softmax.
Regenerate the committed file with `python -m model_zoo.onnx.tiny_cnn`.
"""
from __future__ import annotations

import os

import onnx

from ._builder import DEFAULT_OPSET, NetBuilder, cli

BUNDLED = os.path.join(os.path.dirname(__file__), "tiny_cnn.onnx")


def build_tiny_cnn(seed: int = 0, opset: int = DEFAULT_OPSET, batch="N") -> onnx.ModelProto:
    b = NetBuilder(seed)
    x = b.relu(b.conv("input", 3, 8, 3))
    x = b.max_pool(x, 2, 2)
    x = b.relu(b.bn(b.conv(x, 8, 16, 3, bias=False), 16))
    x = b.flatten(b.global_avg_pool(x))
    x = b.gemm(x, 16, 10)
    probs = b.node("Softmax", [x], "softmax", axis=1)
    b.rename_output(probs, "probs")
    return b.model("tiny_cnn", "input", (batch, 3, 32, 32), "probs", (batch, 10), opset)


if __name__ == "__main__":
    cli(build_tiny_cnn, BUNDLED, __doc__.splitlines()[0],
        [(("--opset",), {"type": int, "default": DEFAULT_OPSET})])
