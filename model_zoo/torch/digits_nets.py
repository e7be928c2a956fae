"""Two small digit classifiers trained on real data by model_zoo/torch/digits_train.py.

- `DigitsMobileNetV2`: MobileNetV2-style. Stem Conv3x3 + BN + ReLU6, then inverted residual
  blocks (1x1 expand + BN + ReLU6, depthwise 3x3 + BN + ReLU6, 1x1 project + BN, residual
  add when stride 1 and the channel count is unchanged), a 1x1 head conv + BN + ReLU6,
  global average pool, Linear.
- `DigitsResNet`: ResNet-style. Stem Conv3x3 + BN + ReLU, basic blocks (two Conv3x3 + BN,
  a 1x1 conv + BN shortcut where the shape changes, residual add, ReLU), global average
  pool, Linear.

Both take a [N, 1, 28, 28] float32 image with pixel values in [0, 1] and return 10 logits.
"""
from __future__ import annotations

from torch import nn

INPUT_SIZE = 28


def conv_bn(cin, cout, k, stride=1, groups=1, act=nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=False))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class DigitsMobileNetV2(nn.Module):
    # (expand ratio, output channels, repeats, first stride), as in the MobileNetV2 paper
    SETTINGS = ((1, 8, 1, 1), (4, 16, 2, 2), (4, 24, 3, 2), (4, 32, 2, 1))

    def __init__(self, num_classes=10, stem=16, head=96):
        super().__init__()
        blocks = [conv_bn(1, stem, 3, 1)]
        cin = stem
        for expand, cout, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        blocks.append(conv_bn(cin, head, 1))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, act=nn.ReLU)
        self.conv2 = conv_bn(cout, cout, 3, 1, act=None)
        self.shortcut = (conv_bn(cin, cout, 1, stride, act=None)
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class DigitsResNet(nn.Module):
    STAGES = ((16, 1), (32, 2), (48, 2))  # (channels, first stride); one basic block each

    def __init__(self, num_classes=10, stem=16):
        super().__init__()
        layers = [conv_bn(1, stem, 3, 1, act=nn.ReLU)]
        cin = stem
        for cout, stride in self.STAGES:
            layers.append(BasicBlock(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


NETS = {"mobilenetv2": DigitsMobileNetV2, "resnet": DigitsResNet}
