"""ResNet-18-shaped network (He et al. 2016), seeded random weights.

7x7/2 stem conv + BN + ReLU + 3x3/2 MaxPool, four stages of two BasicBlocks
(3x3 conv-BN-ReLU, 3x3 conv-BN, Add with the identity or a 1x1/2 conv-BN
downsample, ReLU), GlobalAveragePool, Flatten, Gemm. BN is *not* folded, so
the converter and the BN-folding pass see it. `width` scales the 64..512
channels (default 0.5 keeps the file near 11 MB instead of 45 MB).
"""
from __future__ import annotations

import onnx

from ._builder import DEFAULT_OPSET, NetBuilder, cli


def _basic_block(b, x, cin, cout, stride):
    y = b.relu(b.bn(b.conv(x, cin, cout, 3, stride=stride, bias=False), cout))
    y = b.bn(b.conv(y, cout, cout, 3, bias=False), cout)
    if stride != 1 or cin != cout:
        x = b.bn(b.conv(x, cin, cout, 1, stride=stride, pad=0, bias=False, base="downsample"), cout)
    return b.relu(b.add(x, y))


def build_resnet18(width: float = 0.5, num_classes: int = 1000, image_size: int = 224, seed: int = 0,
                   opset: int = DEFAULT_OPSET, batch="N") -> onnx.ModelProto:
    b = NetBuilder(seed)
    widths = [max(8, int(c * width)) for c in (64, 128, 256, 512)]
    x = b.relu(b.bn(b.conv("input", 3, widths[0], 7, stride=2, bias=False, base="stem"), widths[0]))
    x = b.max_pool(x, 3, 2, pad=1)
    cin = widths[0]
    for stage, cout in enumerate(widths):
        for i in range(2):
            x = _basic_block(b, x, cin, cout, 2 if (i == 0 and stage > 0) else 1)
            cin = cout
    x = b.flatten(b.global_avg_pool(x))
    logits = b.gemm(x, cin, num_classes)
    b.rename_output(logits, "logits")
    return b.model("resnet18", "input", (batch, 3, image_size, image_size), "logits",
                   (batch, num_classes), opset)


if __name__ == "__main__":
    cli(build_resnet18, "resnet18.onnx", __doc__.splitlines()[0],
        [(("--width",), {"type": float, "default": 0.5}), (("--opset",), {"type": int, "default": DEFAULT_OPSET})])
