"""SqueezeNet-1.1-shaped network (Iandola et al. 2016), seeded random weights.

3x3/2 conv + ReLU, MaxPool 3x3/2 with ceil_mode, Fire modules (1x1 squeeze,
then 1x1 and 3x3 expands joined by Concat), two more ceil_mode pools,
Dropout, 1x1 conv classifier + ReLU, GlobalAveragePool, Flatten, Softmax.
"""
from __future__ import annotations

import numpy as np
import onnx

from ._builder import DEFAULT_OPSET, NetBuilder, cli

# (squeeze, expand) channels of fire2..fire9; a ceil_mode MaxPool precedes fire4 and fire6
FIRES = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))


def _fire(b, x, cin, squeeze, expand):
    s = b.relu(b.conv(x, cin, squeeze, 1, pad=0, base="squeeze"))
    e1 = b.relu(b.conv(s, squeeze, expand, 1, pad=0, base="expand1x1"))
    e3 = b.relu(b.conv(s, squeeze, expand, 3, pad=1, base="expand3x3"))
    return b.node("Concat", [e1, e3], "concat", axis=1), 2 * expand


def build_squeezenet(num_classes: int = 1000, image_size: int = 224, seed: int = 0,
                     opset: int = DEFAULT_OPSET, batch="N") -> onnx.ModelProto:
    b = NetBuilder(seed)
    x = b.relu(b.conv("input", 3, 64, 3, stride=2, pad=0, base="conv1"))
    x = b.max_pool(x, 3, 2, ceil_mode=1)
    cin = 64
    for i, (squeeze, expand) in enumerate(FIRES):
        if i in (2, 4):
            x = b.max_pool(x, 3, 2, ceil_mode=1)
        x, cin = _fire(b, x, cin, squeeze, expand)
    if opset >= 12:
        ratio = b.weight("dropout.ratio", np.array(0.5, np.float32))
        x = b.node("Dropout", [x, ratio], "dropout")
    else:
        x = b.node("Dropout", [x], "dropout", ratio=0.5)
    x = b.relu(b.conv(x, cin, num_classes, 1, pad=0, base="classifier"))
    x = b.flatten(b.global_avg_pool(x))
    probs = b.node("Softmax", [x], "softmax", axis=1)
    b.rename_output(probs, "probs")
    return b.model("squeezenet", "input", (batch, 3, image_size, image_size), "probs",
                   (batch, num_classes), opset)


if __name__ == "__main__":
    cli(build_squeezenet, "squeezenet.onnx", __doc__.splitlines()[0],
        [(("--opset",), {"type": int, "default": DEFAULT_OPSET})])
