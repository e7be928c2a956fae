"""benchmarks/bench_gemm.py's int8 part runs (tiny sizes, one repetition): the VNNI peak
loop builds and reports, the int8 GEMM line names the kernel the runtime picked, and the
graph it times computes what the numpy reference computes (so the figure is of a real int8
convolution, whatever kernel is registered). Timings are never asserted."""
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_gemm  # noqa: E402
from mobconv import runtime  # noqa: E402
from mobconv.formats.writer import to_bytes  # noqa: E402
from mobconv.reference.interpreter import run as ref_run  # noqa: E402


def test_int8_report_prints_peak_and_kernel(capsys):
    bench_gemm.int8_report([48], threads=1, isas=None, reps=1, model_convs=False)
    out = capsys.readouterr().out
    peaks = dict(re.findall(r"^1-core int8 peak (\S+)\s+([\d.]+) GOPS", out, re.M))
    if "avx512_vnni" in runtime.supported_isas():
        assert float(peaks["vpdpbusd_zmm"]) > 0 and float(peaks["vpdpbusd_ymm"]) > 0
    line = next(line for line in out.splitlines() if line.startswith("int8 GEMM 1x1 Conv 48x48x48"))
    gops, kernel = re.search(r"([\d.]+) GOPS \(.*\) kernel (\S+)", line).groups()
    assert float(gops) > 0 and kernel.startswith("conv_")
    if peaks:
        assert "% of the 1-core" in line


@pytest.mark.parametrize("shape", [("1x1", 40, 24, 6, 1, 1, 1), ("3x3", 8, 12, 7, 3, 2, 1),
                                   ("dw", 16, 16, 9, 3, 1, 16)])
def test_timed_graphs_match_the_reference(shape):
    _, cin, cout, hw, k, s, group = shape
    g, feeds = bench_gemm.int8_conv(cin, cout, hw, hw, k, s, group)
    want = ref_run(g, feeds)["y"]
    assert want.dtype == np.int8 and len(np.unique(want)) > 8  # not saturated to a constant
    with runtime.Interpreter(to_bytes(g), threads=1) as it:
        got = it.run(feeds)["y"]
    assert np.array_equal(got, want)
    secs, kernel = bench_gemm.int8_time(g, feeds, 1, None, reps=1)
    assert secs > 0 and kernel.startswith("conv_")
