"""mobconv's quantizer and compressor: `from mobconv import quantize`.

    q = quantize.quantize(model, "calib/")              # static int8 (calibrated)
    q = quantize.quantize(model, scheme="int8-weights")  # weight-only int8, no data
    q = quantize.quantize(model, scheme="fp16")          # float16 weight storage
    report = quantize.debug(model, q, "calib/", report_dir="report/")

Compression (docs/compression.md):

    p = quantize.prune(model, 0.5)                  # unstructured magnitude pruning
    s = quantize.sensitivity(model, "calib/")       # per-layer sparsity curves + plot
    c = quantize.prune_channels(model, 0.3)         # structured: a smaller dense graph
    k = quantize.cluster(model, 16)                 # k-means palette + packed indices
    f = quantize.low_rank(model, energy=0.9)        # SVD: one layer -> two smaller ones
    quantize.distill.*                              # teacher outputs, losses, PyTorch adapter

See docs/quantization.md ("Using the quantizer") and quantize/api.py.
"""
import importlib

from .api import quantize
from .config import DEFAULT_METHOD, IO_DTYPES, METHODS, SCHEMES, QuantConfig
from .debug import debug

# Compression entry points, imported on first use (they pull in scikit-learn, torch...).
# Module names differ from the function names so `import mobconv.quantize.X` never
# shadows a function.
_LAZY = {
    "prune": ("pruning", "prune"),
    "sensitivity": ("prune_sensitivity", "sensitivity"),
    "prune_channels": ("channel_pruning", "prune_channels"),
    "cluster": ("clustering", "cluster"),
    "low_rank": ("factorize", "low_rank"),
    "distill": ("distill", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


__all__ = ["quantize", "debug", "QuantConfig", "DEFAULT_METHOD", "METHODS", "SCHEMES",
           "IO_DTYPES", *_LAZY]
