"""Weight clustering and low-rank factorization on the trained zoo classifiers: file size,
held-out top-1 and logit SQNR (docs/compression-clustering.md, docs/compression-low-rank.md).

    python benchmarks/cluster_low_rank.py

Per net (model_zoo/onnx/digits_{mobilenetv2,resnet}.onnx, 450 held-out images of
digits_heldout.npz, int8 calibrated on digits_calib/): fp32, 16/32/256 clusters, int8
alone, 16 clusters then int8, int8 then 16 clusters, 16 clusters then fp16 (bytes of
Model.to_bytes(), ratio to fp32, top-1 on the reference and runtime backends, logit SQNR
against fp32); then low_rank at energy 0.9 / 0.99 and rank 4 / 8 (layers factorized,
MACs and parameters from mobconv.summary, smallest weight SQNR). Printed, never asserted;
about 3 minutes on one core.
"""
from __future__ import annotations

import math
import os

import numpy as np

import mobconv
from mobconv import quantize
from mobconv.api import Model
from mobconv.summary import summarize

ZOO = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx")


def evaluate(model, images, labels, ref) -> str:
    top1 = {}
    for backend in ("reference", "runtime"):
        got = Model(model.graph).run({"input": images}, backend=backend)["logits"]
        top1[backend] = float(np.mean(got.argmax(1) == labels)) * 100
    noise = max(float(((ref - got) ** 2).sum()), 1e-30)
    sqnr = 10 * math.log10(float((ref ** 2).sum()) / noise)
    return (f"top-1 reference {top1['reference']:.2f} runtime {top1['runtime']:.2f}, "
            f"logit SQNR {sqnr:.1f} dB")


def main() -> None:
    held = np.load(os.path.join(ZOO, "digits_heldout.npz"))
    images, labels = held["images"], held["labels"]
    calib = os.path.join(ZOO, "digits_calib")
    for net in ("mobilenetv2", "resnet"):
        model = mobconv.convert(os.path.join(ZOO, f"digits_{net}.onnx"))
        ref = model.run({"input": images}, backend="reference")["logits"]
        fp32 = len(model.to_bytes())
        k16 = quantize.cluster(model, 16)
        int8 = quantize.quantize(model, calib, progress=False)
        rows = [("fp32", model), ("16 clusters", k16), ("32 clusters", quantize.cluster(model, 32)),
                ("256 clusters", quantize.cluster(model, 256)), ("int8", int8),
                ("16 clusters -> int8", quantize.quantize(k16, calib, progress=False)),
                ("int8 -> 16 clusters", quantize.cluster(int8, 16)),
                ("16 clusters -> fp16", quantize.quantize(k16, scheme="fp16"))]
        for name, m in rows:
            size = len(m.to_bytes())
            print(f"{net:12s} {name:20s} {size:7d} B {size / fp32:.3f}  "
                  f"{evaluate(m, images, labels, ref)}")
        for kwargs in ({"energy": 0.9}, {"energy": 0.99}, {"rank": 4}, {"rank": 8}):
            f = quantize.low_rank(model, **kwargs)
            before, after = summarize(model.graph), summarize(f.graph)
            done = [r for r in f.factorized if not r.skipped]
            worst = min((r.sqnr_db for r in done), default=math.inf)
            print(f"{net:12s} low_rank {kwargs}: {len(done)}/{len(f.factorized)} layers, MACs "
                  f"{before.macs} -> {after.macs}, params {before.num_params} -> "
                  f"{after.num_params}, file {fp32} -> {len(f.to_bytes())}, smallest weight "
                  f"SQNR {worst:.1f} dB, {evaluate(f, images, labels, ref)}")


if __name__ == "__main__":
    main()
