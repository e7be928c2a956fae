"""mobconv's quantizer: `from mobconv import quantize`.

    q = quantize.quantize(model, "calib/")              # static int8 (calibrated)
    q = quantize.quantize(model, scheme="int8-weights")  # weight-only int8, no data
    q = quantize.quantize(model, scheme="fp16")          # float16 weight storage
    report = quantize.debug(model, q, "calib/", report_dir="report/")

See docs/quantization.md ("Using the quantizer") and quantize/api.py.
"""
from .api import quantize
from .config import DEFAULT_METHOD, IO_DTYPES, METHODS, SCHEMES, QuantConfig
from .debug import debug

__all__ = ["quantize", "debug", "QuantConfig", "DEFAULT_METHOD", "METHODS", "SCHEMES", "IO_DTYPES"]
