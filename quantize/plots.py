"""PNG plots of a DebugReport (matplotlib, Agg backend: no display needed).

plot_sqnr: one horizontal bar per layer in graph order (top to bottom): the SQNR of
its output in the quantized run (the error accumulated up to it), with a marker for
the layer's own SQNR (alone, on float inputs); layers that stayed float in another
colour. An exact layer (infinite SQNR) is drawn at the right edge and labelled.
plot_histograms: the float activation histograms of the worst quantized layers, log
counts, with the chosen clipping range [scale*(qmin-zp), scale*(qmax-zp)] drawn.
"""
from __future__ import annotations

import math

import numpy as np

from .report import _db as _fmt
from .report import display_name as _short

INT8_COLOUR = "#3b75af"
FLOAT_COLOUR = "#e8871e"
INPUT_COLOUR = "#8c8c8c"
OWN_COLOUR = "#c0392b"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _finite_cap(values) -> float:
    """Right edge of the SQNR axis: a little past the largest finite value, at most 100 dB
    (an exact or nearly exact layer would squash the others; it is labelled instead)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    top = min(max(finite), 100.0) if finite else 40.0
    return max(top * 1.1, top + 5.0, 10.0)


def plot_sqnr(report, path: str) -> str:
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    rows = sorted(report.layers, key=lambda r: r.order)
    n = max(len(rows), 1)
    layer_rows = [r for r in rows if r.precision != "input"] or rows
    cap = _finite_cap([r.sqnr_db for r in layer_rows] + [r.isolated_sqnr_db for r in layer_rows]
                      + [o.sqnr_db for o in report.outputs])
    height = min(max(3.0, 0.28 * n + 1.8), 60.0)
    fig, ax = plt.subplots(figsize=(10, height), dpi=100)
    y = np.arange(len(rows))
    colours = {"int8": INT8_COLOUR, "float": FLOAT_COLOUR, "input": INPUT_COLOUR}

    def shown(v):
        if v is None:
            return None
        if math.isinf(v):
            return cap if v > 0 else 0.0
        return min(max(v, 0.0), cap)

    acc = [shown(r.sqnr_db) for r in rows]
    ax.barh(y, acc, color=[colours.get(r.precision, INT8_COLOUR) for r in rows], height=0.7)
    own_y = [i for i, r in enumerate(rows) if r.isolated_sqnr_db is not None]
    own_x = [shown(rows[i].isolated_sqnr_db) for i in own_y]
    ax.scatter(own_x, own_y, marker="D", s=22, color=OWN_COLOUR, zorder=3)
    for i, r in enumerate(rows):
        if r.sqnr_db is not None and r.sqnr_db > cap:
            label = "exact" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.0f} dB"
            ax.text(cap * 1.015, i, f"  {label}", va="center", fontsize=7)
    for k, o in enumerate(report.outputs[:3]):
        if o.sqnr_db is not None and math.isfinite(o.sqnr_db):
            ax.axvline(min(max(o.sqnr_db, 0.0), cap), color="black", linestyle=":", linewidth=1.2,
                       label=f"model output {_short(o.name, 24)}: {o.sqnr_db:.1f} dB")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{_short(r.name)} ({r.op})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, cap * 1.15)
    ax.set_xlabel("SQNR vs float (dB, higher is better)")
    ax.set_title(f"Per-layer SQNR of the quantized model ({report.num_samples} sample(s))")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=INT8_COLOUR, label="int8 layer: SQNR of its output (accumulated)"),
               Patch(color=FLOAT_COLOUR, label="fallback layer (stayed float)"),
               Line2D([], [], marker="D", linestyle="", color=OWN_COLOUR,
                      label="layer alone on float inputs (own error)")]
    if any(r.precision == "input" for r in rows):
        handles.insert(2, Patch(color=INPUT_COLOUR, label="graph input (quantized)"))
    handles += ax.get_legend_handles_labels()[0]
    rows_in = 0.18 * math.ceil(len(handles) / 2) + 0.1  # the legend's height, inches
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, rows_in / height, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def _rebin(counts, edges, most: int = 200):
    """At most `most` bins: adjacent bins summed (calibration histograms have thousands)."""
    n = counts.size
    if n <= most:
        return counts, edges
    k = -(-n // most)
    pad = (-n) % k
    c = np.concatenate([counts, np.zeros(pad)]).reshape(-1, k).sum(axis=1)
    e = np.concatenate([edges[:-1][::k], edges[-1:]])
    return c, e


def plot_histograms(report, path: str, count: int = 6) -> str:
    """Histograms of the `count` worst layers that have a histogram (worst first)."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    chosen = [r for r in report.layers if r.tensor in report.histograms][:count]
    cols = min(3, max(len(chosen), 1))
    nrows = max(1, math.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows), dpi=100, squeeze=False)
    for ax in axes.ravel()[len(chosen):]:
        ax.axis("off")
    if not chosen:
        axes[0, 0].text(0.5, 0.5, "no activation histograms", ha="center", va="center")
    for ax, r in zip(axes.ravel(), chosen):
        counts, edges, lo, hi, below, above = report.histograms[r.tensor]
        counts, edges = _rebin(np.asarray(counts, dtype=np.float64), np.asarray(edges, dtype=np.float64))
        ax.stairs(counts, edges, fill=True, color=INT8_COLOUR if r.precision != "float" else FLOAT_COLOUR,
                  alpha=0.8)
        if counts.any():
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        if below or above:
            ax.text(0.02, 0.97, f"outside the plot: {below} below, {above} above", transform=ax.transAxes,
                    fontsize=7, va="top")
        for v in (lo, hi):
            if v is not None:
                ax.axvline(v, color=OWN_COLOUR, linestyle="--", linewidth=1.4)
        if lo is not None and edges[0] < lo:
            ax.axvspan(min(edges[0], lo) - abs(edges[-1] - edges[0]), lo, color=OWN_COLOUR, alpha=0.08)
        if hi is not None and edges[-1] > hi:
            ax.axvspan(hi, max(edges[-1], hi) + abs(edges[-1] - edges[0]), color=OWN_COLOUR, alpha=0.08)
        left = min(edges[0], lo) if lo is not None else edges[0]
        right = max(edges[-1], hi) if hi is not None else edges[-1]
        pad = 0.04 * (right - left) if right > left else 1.0
        ax.set_xlim(left - pad, right + pad)
        clip = "" if r.clip_rate is None else f", clipped {100 * r.clip_rate:.3f}%"
        ax.set_title(f"{_short(r.name, 34)} ({r.op})\nown SQNR {_fmt(r.isolated_sqnr_db)} dB{clip}",
                     fontsize=9)
        ax.set_xlabel("float activation value")
        ax.set_ylabel("count (log)")
    handles = [plt.Line2D([], [], color=OWN_COLOUR, linestyle="--",
                          label="clipping range (int8 limits); values outside it clip")]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    source = getattr(report, "histogram_source", None) or f"{report.num_samples} sample(s)"
    fig.suptitle(f"Float activation histograms of the {len(chosen)} worst layers ({source})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
    return path
