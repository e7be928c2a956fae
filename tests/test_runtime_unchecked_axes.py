"""Files the Python converters would never write still must not crash the runtime.

The structure-aware fuzzer only draws graphs that Python's shape inference
accepts, so a file whose axis attributes or `axes` inputs make no sense for the
input's rank (a rank-0 input reduced over axis 0 segfaulted at prepare) is
reached only by a hostile file. This writes one such file per op that takes
an axis (attribute or input), for ranks 0 and 1 and axes -2..2, with the output
shapes set by hand (no inference), and loads + runs each in a child process:
each must run or fail with the package's error on one line naming the op.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph
from mobconv.ops import load_all

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)


def _axis_cases():
    for name, spec in sorted(load_all().items()):
        attr_names = {a.name for a in spec.attrs}
        input_names = [str(i).rstrip("?*") for i in spec.inputs]
        for rank in (0, 1):
            for axis in (-2, -1, 0, 1, 2):
                if "axis" in attr_names:
                    yield name, rank, axis, "attr", {"axis": axis}
                if "axes" in attr_names:
                    yield name, rank, axis, "attr", {"axes": [axis]}
                if "axes" in input_names:
                    yield name, rank, axis, "input", {}


def _model(name, rank, axis, how, attrs) -> bytes:
    spec = load_all()[name]
    g = Graph(f"{name}_r{rank}_a{axis}")
    shape = (3,) * rank
    g.add_input("x", "float32", shape)
    inputs = ["x"]
    if how == "input":
        names = [str(i).rstrip("?*") for i in spec.inputs]
        for k in range(1, names.index("axes")):
            g.add_constant(f"c{k}", np.zeros((1,), np.float32))
            inputs.append(f"c{k}")
        g.add_constant("axes", np.array([axis], np.int64))
        inputs.append("axes")
    g.add_node(name, inputs, ["y"], attrs)
    g.outputs = ["y"]
    g.values["y"].dtype, g.values["y"].shape = "float32", shape
    return to_bytes(g)


CHILD = r"""
import sys, numpy as np
from mobconv import runtime
from mobconv.errors import MobconvError
for path in sys.argv[1:]:
    print("BEGIN", path, flush=True)
    try:
        with runtime.Interpreter(open(path, "rb").read(), name=path) as it:
            feeds = {i["name"]: np.ones(i["shape"], np.float32) for i in it.inputs}
            it.run(feeds)
        print("OK", path, flush=True)
    except MobconvError as e:
        msg = str(e)
        assert "\n" not in msg and msg, repr(msg)
        print("ERR", path, msg, flush=True)
"""


def test_axes_that_do_not_fit_the_rank_never_crash(tmp_path):
    paths = []
    for case in _axis_cases():
        try:
            data = _model(*case)
        except Exception:  # the writer refused it: not a file the runtime can meet
            continue
        p = tmp_path / ("%s_r%d_a%d_%s.mob" % case[:4]).replace("-", "m")
        p.write_bytes(data)
        paths.append(str(p))
    assert len(paths) > 50, "too few cases written"
    proc = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    begun = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("BEGIN")]
    ended = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith(("OK", "ERR"))]
    assert proc.returncode == 0 and begun == ended == paths, (
        f"exit {proc.returncode}; last case {begun[-1] if begun else None}\n{proc.stderr[-3000:]}")
