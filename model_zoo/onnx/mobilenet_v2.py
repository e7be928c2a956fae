"""MobileNetV2-shaped network (Sandler et al. 2018), seeded random weights.

Stem 3x3/2 conv, 17 inverted residual blocks (1x1 expand -> 3x3 depthwise ->
1x1 linear projection, residual Add when stride 1 and channels match), 1x1
conv to 1280, GlobalAveragePool, Flatten, Gemm. ReLU6 is Clip(0, 6). BN is
folded into conv biases, as exporters usually do. Input 1x3x224x224 with a
symbolic batch dim "N". `width` scales channels (1.0 or 0.5; 0.5 keeps it small).
"""
from __future__ import annotations

import onnx

from ._builder import DEFAULT_OPSET, NetBuilder, cli

# expansion t, output channels c, repeats n, first stride s
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def _divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def build_mobilenet_v2(width: float = 0.5, num_classes: int = 1000, image_size: int = 224,
                       seed: int = 0, opset: int = DEFAULT_OPSET, batch="N") -> onnx.ModelProto:
    b = NetBuilder(seed)
    cin = _divisible(32 * width)
    x = b.relu6(b.conv("input", 3, cin, 3, stride=2, base="stem"))
    for t, c, n, s in BLOCKS:
        cout = _divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = b.relu6(b.conv(y, cin, hidden, 1, base="expand"))
            y = b.relu6(b.conv(y, hidden, hidden, 3, stride=stride, group=hidden, base="dw"))
            y = b.conv(y, hidden, cout, 1, base="project")
            x = b.add(x, y, base="residual") if stride == 1 and cin == cout else y
            cin = cout
    last = max(1280, _divisible(1280 * width)) if width > 1.0 else 1280
    x = b.relu6(b.conv(x, cin, last, 1, base="head"))
    x = b.flatten(b.global_avg_pool(x))
    logits = b.gemm(x, last, num_classes, base="classifier")
    b.rename_output(logits, "logits")
    return b.model("mobilenet_v2", "input", (batch, 3, image_size, image_size), "logits",
                   (batch, num_classes), opset)


if __name__ == "__main__":
    cli(build_mobilenet_v2, "mobilenet_v2.onnx", __doc__.splitlines()[0],
        [(("--width",), {"type": float, "default": 0.5}), (("--opset",), {"type": int, "default": DEFAULT_OPSET})])
