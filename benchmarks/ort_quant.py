"""What the quantization benchmarks share: onnxruntime's static QDQ quantizer as a peer, and
the SQNR figure both report (benchmarks/quant_vs_ort.py, benchmarks/bench_int8.py)."""
from __future__ import annotations

import os
import time

import numpy as np


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - test)^2) in float64; inf when equal, nan on a shape
    mismatch."""
    ref, test = np.asarray(ref, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    if ref.shape != test.shape:
        return float("nan")
    noise = float(((ref - test) ** 2).sum())
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def ort_quantize_static(src: str, pre: str, out: str, feeds, *, activation: str = "QInt8",
                        method: str = "MinMax") -> float:
    """onnxruntime's recommended route: `quant_pre_process` (cached in `pre`, redone when
    `src` is newer), then `quantize_static` in QDQ format, per-channel int8 weights,
    `activation` ('QInt8'/'QUInt8') activations, calibration `method` ('MinMax',
    'Percentile', ...) on `feeds` (an iterable of feed dicts). Returns the seconds taken."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, feeds):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    start = time.perf_counter()
    if not os.path.exists(pre) or os.path.getmtime(pre) < os.path.getmtime(src):
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out), Reader(feeds), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=getattr(QuantType, activation),
                    weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method))
    return time.perf_counter() - start
