"""Converter fuzzing (issue 7, section 2): hostile ONNX and Caffe inputs through
the Python API and, for a sample, the command line. Every input must end in a
model the C++ runtime loads and plans, or in one MobconvError line naming the
file; the CLI must exit as docs/cli.md says, print one line without a
traceback and leave nothing in the output directory on failure. The generators
and the oracle are in tests/converter_fuzz.py.

Normal runs are deterministic (hypothesis derandomize=True, no example
database) and take about a minute in all. MOBCONV_FUZZ_SECONDS=N (e.g.
`MOBCONV_FUZZ_SECONDS=600 make fuzz`) spends about N seconds in all instead,
spread over the targets, with a new seed each round (rounds are seeded
MOBCONV_FUZZ_SEED, +1, +2, ...; default 1, so a long run can be repeated).
"""
import os
import tempfile
import time

import pytest

pytest.importorskip("onnx")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import converter_fuzz as cf  # noqa: E402

FUZZ_SECONDS = float(os.environ.get("MOBCONV_FUZZ_SECONDS", "0") or 0)
FUZZ_SEED = int(os.environ.get("MOBCONV_FUZZ_SEED", "1") or 1)
TARGETS = 6  # tests below that share the budget


def fuzz(strategy, body, examples):
    """Run `body(value, workdir)` on `examples` generated values (or for the budget)."""
    work = tempfile.mkdtemp(prefix="mobconv-fuzz-")

    def run(value):
        body(value, work)

    common = dict(database=None, deadline=None, print_blob=True,
                  suppress_health_check=list(HealthCheck))
    if FUZZ_SECONDS <= 0:
        settings(max_examples=examples, derandomize=True, **common)(given(strategy)(run))()
        return
    stop = time.monotonic() + FUZZ_SECONDS / TARGETS
    round_ = 0
    while time.monotonic() < stop:
        round_ += 1
        seed(FUZZ_SEED + round_)(settings(max_examples=examples, **common)(given(strategy)(run)))()


def _write(work, name, data):
    path = os.path.join(work, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def _onnx(model, work):
    path = _write(work, "fuzz.onnx", model.SerializeToString())
    cf.check_api(cf.convert_onnx(path), [path])


def test_onnx_mutations():
    fuzz(cf.mutated_onnx(), _onnx, 250)


def test_onnx_random_graphs():
    fuzz(cf.random_onnx(), _onnx, 250)


def test_onnx_byte_mutations():
    def body(data, work):
        path = _write(work, "fuzz.onnx", data)
        cf.check_api(cf.convert_onnx(path), [path])

    fuzz(cf.onnx_bytes(), body, 250)


def test_caffe_prototxt_mutations():
    weights = os.path.join(cf.DIGITS, "digits.caffemodel")

    def body(value, work):
        text, with_weights = value
        path = _write(work, "fuzz.prototxt", text)
        if with_weights:
            cf.check_api(cf.convert_caffe(path, weights), [path, weights])
        else:
            cf.check_api(cf.convert_caffe(path), [path])

    fuzz(st.tuples(cf.mutated_prototxt(), st.booleans()), body, 250)


def test_caffe_generated_nets():
    def body(value, work):
        text, blobs = value
        path = _write(work, "gen.prototxt", text)
        if blobs is None:
            cf.check_api(cf.convert_caffe(path), [path])
        else:
            weights = os.path.join(work, "gen.caffemodel")
            cf.write_caffemodel(weights, blobs)
            cf.check_api(cf.convert_caffe(path, weights), [path, weights])

    fuzz(cf.generated_prototxt(), body, 250)


@st.composite
def cli_cases(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return "onnx", draw(cf.mutated_onnx()).SerializeToString()
    if kind == 1:
        return "onnx", draw(cf.random_onnx()).SerializeToString()
    if kind == 2:
        return "onnx", draw(cf.onnx_bytes())
    return "caffe", draw(cf.mutated_prototxt())


def test_cli_sample():
    """The same kinds of files through `mobconv onnx2mob/caffe2mob`: the exit code is
    the API's (0, or the error's exit_code), one stderr line, no file left behind."""

    def body(value, work):
        framework, data = value
        if framework == "onnx":
            path = _write(work, "fuzz.onnx", data)
            outcome, result = cf.check_api(cf.convert_onnx(path), [path])
            argv = ["onnx2mob", path]
        else:
            path = _write(work, "fuzz.prototxt", data)
            outcome, result = cf.check_api(cf.convert_caffe(path), [path])
            argv = ["caffe2mob", path, "--random-weights"]
        code = 0 if outcome == "ok" else result.exit_code
        cf.check_cli(argv, [path], os.path.join(work, "out"), expected_code=code)

    fuzz(cli_cases(), body, 5)
