"""Unstructured pruning of the trained zoo classifiers without fine-tuning: which global
ranking keeps them closest, and what sensitivity() costs and proposes.

    python benchmarks/prune_scope.py                      # both nets, 30/50/70 %
    python benchmarks/prune_scope.py --nets resnet --levels 0.5

For digits_mobilenetv2 and digits_resnet (model_zoo/onnx, held-out split
digits_heldout.npz, 450 images) and each sparsity: top-1 and output SQNR (dB, logits
against the unpruned model) of `quantize.prune(model, s)` with the default selection,
ranked four ways:
  lamp   one threshold on LAMP scores (what prune's scope="global" does)
  rms    one threshold on |w| / rms(layer)
  raw    one threshold on |w|
  layer  every selected layer at s (scope="layer")
then `quantize.sensitivity` on the first 64 held-out images (seconds, backend) and
top-1/SQNR of `prune(model, per_layer=report.propose(s))`.
Runs on the C++ runtime when built (weights dense in memory; the zeros are what counts
here, not the storage). Numbers are printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import mobconv
from mobconv import quantize
from mobconv.quantize import pruning
from mobconv.quantize._compress_common import weight_layers
from mobconv.quantize.debug import ErrorStats

ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model_zoo", "onnx")
RANKINGS = ("lamp", "rms", "raw", "layer")


def _run(model, x):
    graph = model.graph.copy()
    for value in graph.values.values():
        value.storage = None
    return mobconv.Model(graph).run({"input": x})["logits"]


def _prune(model, s, ranking):
    if ranking == "layer":
        return quantize.prune(model, s, scope="layer")
    original = pruning.global_counts
    pruning.global_counts = lambda g, layers, sp, score="lamp": original(g, layers, sp, ranking)
    try:
        return quantize.prune(model, s)
    finally:
        pruning.global_counts = original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["mobilenetv2", "resnet"])
    parser.add_argument("--levels", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    parser.add_argument("--sensitivity-samples", type=int, default=64)
    args = parser.parse_args(argv)
    held = np.load(os.path.join(ZOO, "digits_heldout.npz"))
    x, y = held["images"], held["labels"]
    for net in args.nets:
        model = mobconv.convert(os.path.join(ZOO, f"digits_{net}.onnx"))
        ref = _run(model, x)
        selected = pruning.default_selection(weight_layers(model.graph),
                                             pruning.DEFAULT_MIN_PARAMS)
        print(f"digits_{net}: top-1 {np.mean(ref.argmax(1) == y):.4f} unpruned; "
              f"{len(selected)} layers, {sum(l.size for l in selected)} weights selected")

        def score(m):
            out = _run(m, x)
            stats = ErrorStats()
            stats.add(ref, out)
            return f"{np.mean(out.argmax(1) == y):.4f} / {stats.sqnr_db:5.1f} dB"

        print("  sparsity  " + "  ".join(f"{r:>20}" for r in RANKINGS) + "   (top-1 / SQNR)")
        for s in args.levels:
            print(f"  {s:8.2f}  " + "  ".join(f"{score(_prune(model, s, r)):>20}" for r in RANKINGS))
        feeds = [{"input": x[i:i + 1]} for i in range(args.sensitivity_samples)]
        start = time.perf_counter()
        report = quantize.sensitivity(model, feeds)
        took = time.perf_counter() - start
        print(f"  sensitivity: {len(report.layers)} layers x {len(report.sparsities)} levels on "
              f"{report.num_samples} images, {report.backend}: {took:.1f} s")
        for s in args.levels:
            print(f"  propose({s:g}) -> prune(per_layer=...): "
                  f"{score(quantize.prune(model, per_layer=report.propose(s)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
