"""PNG plot of a pruning SensitivityReport (matplotlib Agg, set up by quantize/plots.py).

One curve per layer: x = the layer's sparsity (only that layer pruned), y = the output
SQNR in dB (higher is better; an exact output is drawn at the top edge and marked) or
the evaluate() score with the unpruned model's score as a dotted line. Layers are
coloured in graph order (early = dark); the legend lists them in graph order.
"""
from __future__ import annotations

import math

import numpy as np

from .plots import _pyplot
from .report import display_name

MAX_LEGEND = 40  # more layers than this: the legend names the most sensitive ones


def _shown(values, cap):
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(np.nan)
        elif math.isinf(v):
            out.append(cap if v > 0 else np.nan)
        else:
            out.append(min(v, cap))
    return np.array(out, dtype=np.float64)


def plot_sensitivity(report, path) -> str:
    plt = _pyplot()
    xs = np.asarray(report.sparsities, dtype=np.float64) * 100.0
    finite = [v for c in report.layers for v in c.values
              if v is not None and math.isfinite(v)]
    sqnr = report.metric == "sqnr"
    if sqnr:
        top = min(max(finite), 100.0) if finite else 40.0
        cap = max(top * 1.1, top + 5.0)
    else:
        cap = math.inf
    # the most sensitive (lowest value at the highest level) get legend entries first
    worst = sorted(range(len(report.layers)), key=lambda i: _last(report.layers[i].values))
    named = set(worst[:MAX_LEGEND])
    columns = 1 if len(named) <= 20 else 2
    fig, ax = plt.subplots(figsize=(10 + 4.5 * columns, 6), dpi=100)  # room for the legend
    cmap = plt.get_cmap("viridis")
    n = max(len(report.layers), 1)
    for i, curve in enumerate(report.layers):
        ys = _shown(curve.values, cap)
        text = f"{display_name(curve.name, 36)} ({curve.op}, {curve.params})"
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, color=cmap(0.9 * i / n),
                label=text if i in named else None)
        exact = [x for x, v in zip(xs, curve.values) if v is not None and math.isinf(v) and v > 0]
        if exact:
            ax.scatter(exact, [cap] * len(exact), marker="^", color=cmap(0.9 * i / n), zorder=3)
    if not sqnr and report.baseline is not None and math.isfinite(report.baseline):
        ax.axhline(report.baseline, color="black", linestyle=":", linewidth=1.2,
                   label=f"unpruned: {report.baseline:.4g}")
    ax.set_xlabel("sparsity of the layer (%), the other layers unpruned")
    ax.set_ylabel("output SQNR vs unpruned (dB, higher is better)" if sqnr
                  else "evaluate() score (higher is better)")
    if sqnr and finite:
        ax.set_ylim(min(min(finite), 0.0) - 1.0, cap * 1.02)
    ax.set_xlim(0, 100)
    ax.grid(alpha=0.3)
    source = report.data if len(report.data) <= 70 else report.data[:67] + "..."
    ax.set_title(f"Pruning sensitivity per layer ({report.num_samples} sample(s): {source})"
                 if sqnr else "Pruning sensitivity per layer (evaluate())", fontsize=10)
    if len(report.layers) > MAX_LEGEND:
        ax.text(0.01, 0.01, f"legend: the {MAX_LEGEND} most sensitive of {len(report.layers)} "
                "layers", transform=ax.transAxes, fontsize=7)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
              ncol=columns)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _last(values) -> float:
    for v in reversed(values):
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return v
    return math.inf
