"""Small PyTorch nets with several independent dynamic dims (batch and sequence, time, H and W).

- `BertEncoder`: BERT-style encoder over int64 `input_ids` [B, S] and `attention_mask` [B, S]:
  word + position (arange(S) from the input's shape) + token-type embeddings, LayerNorm,
  multi-head self-attention with x.view(B, S, H, D).transpose(1, 2), an additive mask
  built from the attention mask ((1 - mask) * min, unsqueezed and expanded), Softmax,
  GELU MLP, post-norm; vocab 100, hidden 32, 2 layers, 4 heads.
- `SpeechConv1d`: 1-D conv net over [B, C, T] (strided conv, depthwise conv, GLU-free
  gating by sigmoid, per-frame projection via transpose + Linear, log-softmax).
- `DenseFCN`: fully-convolutional net over [B, 3, H, W] with a stride-4 encoder and an
  upsample back to the input size via interpolate(size=x.shape[-2:]).

`DYNAMIC_NETS` maps name -> (constructor, example feeds builder, input names,
dynamic axes per input, output names).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x, mask_add):
        B, S, _ = x.shape
        q = self.q(x).view(B, S, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(B, S, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, S, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_add
        probs = scores.softmax(dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(B, S, self.heads * self.head_dim)
        return self.out(ctx)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.attn = BertSelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.fc1 = nn.Linear(hidden, inter)
        self.fc2 = nn.Linear(inter, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, mask_add):
        x = self.ln1(x + self.attn(x, mask_add))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class BertEncoder(nn.Module):
    def __init__(self, vocab=100, hidden=32, layers=2, heads=4, max_pos=64):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(hidden, heads, hidden * 2) for _ in range(layers)])
        self.pool = nn.Linear(hidden, hidden)

    def forward(self, input_ids, attention_mask):
        B, S = input_ids.shape
        pos_ids = torch.arange(S, dtype=torch.long, device=input_ids.device).unsqueeze(0).expand(B, S)
        types = torch.zeros_like(input_ids)
        x = self.ln(self.word(input_ids) + self.pos(pos_ids) + self.token_type(types))
        m = attention_mask[:, None, None, :].to(x.dtype)
        mask_add = (1.0 - m) * torch.finfo(x.dtype).min
        mask_add = mask_add.expand(B, 1, S, S)
        for layer in self.layers:
            x = layer(x, mask_add)
        pooled = torch.tanh(self.pool(x[:, 0]))
        return x, pooled


class SpeechConv1d(nn.Module):
    def __init__(self, cin=16, c=32, classes=12):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, c, 5, stride=2, padding=2)
        self.bn1 = nn.BatchNorm1d(c)
        self.dw = nn.Conv1d(c, c, 7, padding=3, groups=c)
        self.gate = nn.Conv1d(c, c, 1)
        self.conv2 = nn.Conv1d(c, c, 3, padding=1)
        self.proj = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        y = self.dw(x)
        x = x + y * torch.sigmoid(self.gate(y))
        x = F.gelu(self.conv2(x))
        x = x.transpose(1, 2)  # [B, T', C]
        return F.log_softmax(self.proj(x), dim=-1)


class DenseFCN(nn.Module):
    def __init__(self, c=8, classes=4):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.ReLU())
        self.skip = nn.Conv2d(c, 2 * c, 1)
        self.head = nn.Conv2d(2 * c, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.mid(self.enc2(e1))
        up = F.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(up + self.skip(e1))
        return F.interpolate(y, size=x.shape[-2:], mode="nearest")


def _randomize_norms(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def bert_feeds(batch: int, seq: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 100, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    for b in range(batch):  # pad the tail of every other row
        if b % 2 == 1 and seq > 2:
            mask[b, seq - 1 - b % (seq - 1):] = 0
    return {"input_ids": ids, "attention_mask": mask}


def speech_feeds(batch: int, time: int, seed: int = 0) -> dict:
    import numpy as np

    return {"features": np.random.default_rng(seed).standard_normal((batch, 16, time)).astype(np.float32)}


def image_feeds(batch: int, h: int, w: int, seed: int = 0) -> dict:
    import numpy as np

    return {"image": np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)}


# name -> (ctor, feeds(*sizes), dynamic axes {input: {axis: symbol}}, output names, example sizes)
DYNAMIC_NETS = {
    "bert": (BertEncoder, bert_feeds, {"input_ids": {0: "batch", 1: "seq"},
                                       "attention_mask": {0: "batch", 1: "seq"}},
             {"hidden": {0: "batch", 1: "seq"}, "pooled": {0: "batch"}}, (2, 8)),
    "speech": (SpeechConv1d, speech_feeds, {"features": {0: "batch", 2: "time"}},
               {"logprobs": {0: "batch", 1: "frames"}}, (2, 40)),
    "fcn": (DenseFCN, image_feeds, {"image": {0: "batch", 2: "height", 3: "width"}},
            {"mask": {0: "batch", 2: "height", 3: "width"}}, (2, 32, 48)),
}


def build_dynamic(name: str, seed: int = 0):
    """(model in eval mode with seeded weights, feeds builder, input axes, output axes, example sizes)."""
    ctor, feeds, in_axes, out_axes, sizes = DYNAMIC_NETS[name]
    torch.manual_seed(seed)
    model = ctor()
    with torch.no_grad():
        _randomize_norms(model, torch.Generator().manual_seed(seed + 1))
    return model.eval(), feeds, in_axes, out_axes, sizes
