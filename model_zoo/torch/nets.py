"""Small PyTorch versions of real architectures, written after their published structure.

timm and torchvision hold the canonical definitions, but torchvision cannot be
installed beside the pinned torch wheel and timm imports it at start-up, so the
blocks are re-written here, keeping the operations their exports produce:

- MobileNetV3 (Howard et al. 2019): inverted residuals, depthwise convs,
  squeeze-excitation with hard-sigmoid gate, hard-swish, Small and Large stems.
- EfficientNet-B0 (Tan & Le 2019): MBConv with SiLU, SE (SiLU/sigmoid), stride-2
  depthwise, dropout-free head.
- ResNet-50 (He et al. 2016): bottleneck blocks with projection shortcuts.
- DenseNet (Huang et al. 2017): dense block (BN-ReLU-Conv1x1-BN-ReLU-Conv3x3, concat),
  transition with average pooling.
- ShuffleNetV2 (Ma et al. 2018): channel split (chunk), channel shuffle by
  reshape/transpose/reshape, stride-2 units with two branches.
- ConvNeXt (Liu et al. 2022): depthwise 7x7, LayerNorm channels-last via permutes,
  pointwise MLP with GELU, layer scale; stem LayerNorm2d.
- ViT (Dosovitskiy et al. 2021): conv patch embed, class token expanded to the
  batch and concatenated, positional embedding, pre-norm multi-head attention
  with batched MatMul/Softmax, GELU MLP.
- UNet-ish (Ronneberger et al. 2015): encoder/decoder with skip concat, upsampling by
  ConvTranspose, bilinear (align_corners False and True) and nearest interpolation.
- YOLO-ish head (YOLOv5/v8 style): SiLU conv blocks, C2f-style split/concat, a
  detect head that reshapes/permutes per-anchor outputs and applies Sigmoid.

Widths and depths are cut down so that export + conversion + run stay fast;
`build(name)` returns a seeded, eval-mode model and its input size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _make_div(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(cin, cout, k=3, s=1, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# ---- MobileNetV3 -----------------------------------------------------------


class SqueezeExcite(nn.Module):
    def __init__(self, c, rd, act=nn.ReLU, gate=nn.Hardsigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(c, rd, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(rd, c, 1)
        self.gate = gate()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, exp, cout, k, s, se, act):
        super().__init__()
        self.use_res = s == 1 and cin == cout
        layers = []
        if exp != cin:
            layers.append(conv_bn(cin, exp, 1, act=act))
        layers.append(conv_bn(exp, exp, k, s, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, _make_div(exp // 4)))
        layers.append(conv_bn(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


# (kernel, expansion, out, SE, activation, stride) as in the paper's tables
_MBV3_SMALL = [
    (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 120, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2), (5, 576, 96, True, "HS", 1),
]
_MBV3_LARGE = [
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
]


class MobileNetV3(nn.Module):
    def __init__(self, cfg, last, width=0.5, num_classes=10):
        super().__init__()
        stem = _make_div(16 * width)
        layers = [conv_bn(3, stem, 3, 2, act=nn.Hardswish)]
        cin = stem
        for k, exp, out, se, nl, s in cfg:
            act = nn.Hardswish if nl == "HS" else nn.ReLU
            exp, out = _make_div(exp * width), _make_div(out * width)
            layers.append(InvertedResidual(cin, exp, out, k, s, se, act))
            cin = out
        exp = _make_div(cfg[-1][1] * width)
        layers.append(conv_bn(cin, exp, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(exp, last), nn.Hardswish(), nn.Dropout(0.2),
                                  nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.head(torch.flatten(x, 1))


# ---- EfficientNet-B0 ---------------------------------------------------------


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        exp = cin * expand
        self.use_res = s == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, exp, 1, act=nn.SiLU))
        layers += [conv_bn(exp, exp, k, s, groups=exp, act=nn.SiLU),
                   SqueezeExcite(exp, max(1, cin // 4), act=nn.SiLU, gate=nn.Sigmoid),
                   conv_bn(exp, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class EfficientNetB0(nn.Module):
    # (expand, channels, repeats, stride, kernel), B0 table; width/depth scaled down
    CFG = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
           (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]

    def __init__(self, width=0.25, depth=0.34, num_classes=10):
        super().__init__()
        stem = _make_div(32 * width)
        layers = [conv_bn(3, stem, 3, 2, act=nn.SiLU)]
        cin = stem
        for e, c, n, s, k in self.CFG:
            out = _make_div(c * width)
            for i in range(max(1, math.ceil(n * depth))):
                layers.append(MBConv(cin, out, k, s if i == 0 else 1, e))
                cin = out
        head = _make_div(1280 * width)
        layers.append(conv_bn(cin, head, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


# ---- ResNet-50 -----------------------------------------------------------------


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNet50(nn.Module):
    def __init__(self, base=8, blocks=(3, 4, 6, 3), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], base
        for i, n in enumerate(blocks):
            width = base * 2 ** i
            for j in range(n):
                layers.append(Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.avgpool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


# ---- DenseNet ------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNet(nn.Module):
    def __init__(self, growth=8, blocks=(3, 3), init=16, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        c = init
        for i, n in enumerate(blocks):
            self.blocks.append(nn.ModuleList(DenseLayer(c + k * growth, growth) for k in range(n)))
            c += n * growth
            if i != len(blocks) - 1:
                self.transitions.append(nn.Sequential(
                    nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)))
                c //= 2
        self.norm = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            features = [x]
            for layer in block:
                features.append(layer(features))
            x = torch.cat(features, 1)
            if i < len(self.transitions):
                x = self.transitions[i](x)
        x = F.relu(self.norm(x))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---- ShuffleNetV2 ----------------------------------------------------------------


def channel_shuffle(x, groups: int):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        c2 = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(
            nn.Conv2d(c2, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(2, 3, 2), channels=(16, 32, 64, 128, 256), num_classes=10):
        super().__init__()
        self.conv1 = conv_bn(3, channels[0], 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], channels[0]
        for n, cout in zip(repeats, channels[1:]):
            units = [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.conv5 = conv_bn(cin, channels[-1], 1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


# ---- ConvNeXt ----------------------------------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor (permute to NHWC and back), as in timm."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim, ls_init=0.5):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(ls_init * torch.ones(dim))

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = (self.gamma * x).permute(0, 3, 1, 2)
        return shortcut + x


class ConvNeXt(nn.Module):
    def __init__(self, dims=(16, 32), depths=(2, 2), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))
        stages = []
        for i, (d, n) in enumerate(zip(dims, depths)):
            layers = []
            if i > 0:
                layers += [LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], d, 2, 2)]
            layers += [ConvNeXtBlock(d) for _ in range(n)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(self.norm(x.mean([-2, -1])))


# ---- ViT -------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, img=32, patch=8, dim=32, depth=2, heads=4, num_classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# ---- UNet-ish --------------------------------------------------------------------------


class UNet(nn.Module):
    def __init__(self, c=8, num_classes=3):
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn(3, c), conv_bn(c, c))
        self.enc2 = nn.Sequential(conv_bn(c, 2 * c, s=2), conv_bn(2 * c, 2 * c))
        self.enc3 = nn.Sequential(conv_bn(2 * c, 4 * c, s=2), conv_bn(4 * c, 4 * c))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), conv_bn(4 * c, 4 * c))
        self.up3 = nn.ConvTranspose2d(4 * c, 4 * c, 2, 2)
        self.dec3 = conv_bn(8 * c, 2 * c)
        self.dec2 = conv_bn(4 * c, c)
        self.dec1 = conv_bn(2 * c, c)
        self.out = nn.Conv2d(c, num_classes, 1)
        self.aux = nn.Conv2d(4 * c, num_classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        b = self.bottom(e3)
        d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
        d2 = F.interpolate(d3, scale_factor=2, mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([d2, e2], 1))
        d1 = F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=True)
        d1 = self.dec1(torch.cat([d1, e1], 1))
        aux = F.interpolate(self.aux(b), scale_factor=8, mode="nearest")
        return self.out(d1) + aux


# ---- YOLO-ish -----------------------------------------------------------------------------


class ConvSiLU(nn.Sequential):
    def __init__(self, cin, cout, k=3, s=1):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class C2f(nn.Module):
    def __init__(self, cin, cout, n=1):
        super().__init__()
        self.c = cout // 2
        self.cv1 = ConvSiLU(cin, 2 * self.c, 1)
        self.cv2 = ConvSiLU((2 + n) * self.c, cout, 1)
        self.m = nn.ModuleList(nn.Sequential(ConvSiLU(self.c, self.c), ConvSiLU(self.c, self.c))
                               for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).split((self.c, self.c), 1))
        for m in self.m:
            y.append(y[-1] + m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class YoloHead(nn.Module):
    """Backbone (stride 8/16) + FPN-ish upsample + per-level detect convs.

    Each level's (B, A*(5+nc), H, W) map becomes (B, A*H*W, 5+nc) by
    view/permute/reshape; boxes xy/wh are split off, sigmoid-decoded with a grid,
    and everything is concatenated over levels, as YOLOv5's Detect does.
    """

    def __init__(self, c=8, nc=3, anchors=2):
        super().__init__()
        self.nc, self.na, self.no = nc, anchors, nc + 5
        self.stem = ConvSiLU(3, c, 3, 2)
        self.s1 = nn.Sequential(ConvSiLU(c, 2 * c, 3, 2), C2f(2 * c, 2 * c))
        self.s2 = nn.Sequential(ConvSiLU(2 * c, 4 * c, 3, 2), C2f(4 * c, 4 * c))
        self.s3 = nn.Sequential(ConvSiLU(4 * c, 4 * c, 3, 2), C2f(4 * c, 4 * c))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = C2f(8 * c, 4 * c)
        self.det = nn.ModuleList([nn.Conv2d(4 * c, self.na * self.no, 1), nn.Conv2d(4 * c, self.na * self.no, 1)])
        self.strides = (8, 16)

    def forward(self, x):
        p3 = self.s2(self.s1(self.stem(x)))
        p4 = self.s3(p3)
        p3 = self.fuse(torch.cat([self.up(p4), p3], 1))
        outs = []
        for i, feat in enumerate((p3, p4)):
            y = self.det[i](feat)
            bs, _, ny, nx = y.shape
            y = y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            y = y.sigmoid()
            xy, wh, conf = y.split((2, 2, self.nc + 1), 4)
            gy, gx = torch.meshgrid(torch.arange(ny, dtype=torch.float32),
                                    torch.arange(nx, dtype=torch.float32), indexing="ij")
            grid = torch.stack((gx, gy), 2).view(1, 1, ny, nx, 2)
            xy = (xy * 2 - 0.5 + grid) * self.strides[i]
            wh = (wh * 2) ** 2 * (4 * self.strides[i])
            outs.append(torch.cat((xy, wh, conf), 4).view(bs, -1, self.no))
        return torch.cat(outs, 1)


# ---- registry -----------------------------------------------------------------------------

ARCHITECTURES = {
    # name: (constructor, input H=W)
    "mobilenetv3_small": (lambda: MobileNetV3(_MBV3_SMALL, 256), 64),
    "mobilenetv3_large": (lambda: MobileNetV3(_MBV3_LARGE, 256, width=0.35), 64),
    "efficientnet_b0": (lambda: EfficientNetB0(), 64),
    "resnet50": (lambda: ResNet50(), 64),
    "densenet": (lambda: DenseNet(), 64),
    "shufflenet_v2": (lambda: ShuffleNetV2(), 64),
    "convnext": (lambda: ConvNeXt(), 64),
    "vit": (lambda: ViT(), 32),
    "unet": (lambda: UNet(), 64),
    "yolo": (lambda: YoloHead(), 64),
}


def _randomize_norms(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BatchNorm statistics and norm affine params (fresh ones are 0/1)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def build(name: str, seed: int = 0):
    """(model in eval mode with seeded random weights, input size H=W)."""
    ctor, size = ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = ctor()
    with torch.no_grad():
        _randomize_norms(model, torch.Generator().manual_seed(seed + 1))
    return model.eval(), size
