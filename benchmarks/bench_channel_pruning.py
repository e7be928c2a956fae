"""Structured channel pruning (quantize.prune_channels) on the trained zoo classifiers:
what 0 / 30 / 50 % of the channels buy, before any fine-tuning.

    python benchmarks/bench_channel_pruning.py                 # both nets, 0/0.3/0.5, l1
    python benchmarks/bench_channel_pruning.py --criterion bn_gamma --fractions 0 0.3
    python benchmarks/bench_channel_pruning.py --batch 8 --runs 100 --rounds 5
    python benchmarks/bench_channel_pruning.py --nets mobilenet_v2 resnet18 --runs 5 --rounds 3

Per net and fraction: parameters, MACs (mobconv.summary), .mob file size, latency on the
C++ runtime (one interpreter per variant, input pinned with set_input_pointer, then
`invoke` only: the median over rounds x runs, the variants measured in alternating
blocks so machine-load drift hits all of them alike), the ratio to the unpruned model,
and top-1 on the held-out split (model_zoo/onnx/digits_heldout.npz, runtime backend).
No fine-tuning here: quantize.distill recovers the accuracy (docs/compression.md).
Numbers are printed, never asserted; the machine is shared, so read the ratios.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "model_zoo" / "onnx"
NETS = ("mobilenetv2", "resnet")
BUILT = ("mobilenet_v2", "resnet18")  # model_zoo recipes, 224x224, width 1.0, seeded weights


def variants(net: str, fractions, criterion: str) -> list:
    import mobconv
    from mobconv import quantize

    if net in BUILT:
        import tempfile

        import onnx

        from model_zoo.onnx.mobilenet_v2 import build_mobilenet_v2
        from model_zoo.onnx.resnet18 import build_resnet18

        build = build_mobilenet_v2 if net == "mobilenet_v2" else build_resnet18
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{net}.onnx")
            onnx.save(build(width=1.0), path)
            model = mobconv.convert(path)
    else:
        model = mobconv.convert(str(ZOO / f"digits_{net}.onnx"))
    result = []
    for f in fractions:
        pruned = model if f == 0 else quantize.prune_channels(model, f, criterion=criterion,
                                                              progress=False)
        result.append((f, pruned, pruned.to_bytes()))
    return result


def latencies(blobs, x, runs: int, rounds: int, threads: int) -> list:
    """Median seconds per invoke of each model (bytes), alternating blocks of `runs`."""
    from mobconv.runtime import Interpreter

    times = [[] for _ in blobs]
    for _ in range(rounds):
        for i, blob in enumerate(blobs):
            with Interpreter(blob, threads=threads, profile=False) as it:
                it.resize("input", x.shape)
                it.set_input_pointer("input", x)
                for _ in range(3):
                    it.invoke()
                for _ in range(runs):
                    t0 = time.perf_counter()
                    it.invoke()
                    times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def top1(net, model, data) -> str:
    if net in BUILT:
        return "-"  # random weights: no accuracy to speak of
    logits = model.run({"input": data["images"]}, backend="runtime")["logits"]
    return f"{float((logits.argmax(1) == data['labels']).mean()):.1%}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS + BUILT,
                   help="the digits zoo nets (default), or ImageNet-size recipes "
                        f"({', '.join(BUILT)}: latency and size only)")
    p.add_argument("--fractions", nargs="+", type=float, default=[0.0, 0.3, 0.5])
    p.add_argument("--criterion", default="l1", choices=("l1", "bn_gamma"))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=50, help="invokes per block")
    p.add_argument("--rounds", type=int, default=5, help="alternating blocks per variant")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if 0.0 not in args.fractions:
        args.fractions = [0.0] + args.fractions
    sys.path.insert(0, str(ROOT))
    data = np.load(ZOO / "digits_heldout.npz")
    digits = np.ascontiguousarray(data["images"][:args.batch])
    print(f"channel pruning ({args.criterion}), batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.rounds}x{args.runs} invokes; top-1 on {len(data['labels'])} held-out "
          "images, no fine-tuning")
    header = (f"{'net':<12} {'pruned':>6} {'params':>10} {'MACs':>13} {'file':>11} "
              f"{'latency':>10} {'ratio':>6} {'top-1':>6}")
    print(header)
    print("-" * len(header))
    for net in args.nets:
        rows = variants(net, args.fractions, args.criterion)
        x = digits if net in NETS else rows[0][1].random_inputs()["input"].repeat(args.batch, 0)
        times = latencies([blob for _, _, blob in rows], x, args.runs, args.rounds, args.threads)
        base = times[0]
        for (f, model, blob), t in zip(rows, times):
            s = model.summary()
            print(f"{net:<12} {f:>6.0%} {s.num_params:>10,} {s.macs:>13,} {len(blob):>11,} "
                  f"{t * 1e6:>8.0f}us {t / base:>6.2f} {top1(net, model, data):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
