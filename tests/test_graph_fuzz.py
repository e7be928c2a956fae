"""Structure-aware differential fuzzing of the C++ runtime (tests/graph_fuzz.py).

Well-formed hostile graphs over every registry op run under ASan+UBSan on every
instruction set of this machine at 1 and 2 threads, compared with the numpy
reference. The bounded run here takes MOBCONV_GRAPH_FUZZ_SECONDS (default 60);
`make fuzz` runs it longer.
"""
import collections
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import graph_fuzz as gf  # noqa: E402

SECONDS = float(os.environ.get("MOBCONV_GRAPH_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("MOBCONV_GRAPH_FUZZ_SEED", "20261206"))


def test_every_registry_op_has_a_builder():
    assert gf.missing_builders() == [], "add a builder in tests/graph_fuzz.py for these ops"


def _drawn_ops(n_seeds):
    ops = collections.Counter()
    for seed in range(n_seeds):
        case = gf.draw_graph(seed)
        if case is not None and case.graph.nodes and gf.reference(case):
            ops.update(node.op for node in case.graph.nodes)
    return ops


def _features(node, g):
    shapes = [g.values[n].shape for n in node.inputs if n]
    out = g.values[node.outputs[0]].shape
    found = []
    if node.op in ("Add", "Mul") and 0 in out and any(0 not in s for s in shapes):
        found.append("zero-size output from a broadcast operand")
    if node.op == "MatMul" and shapes[1][-2 if len(shapes[1]) > 1 else 0] == 0:
        found.append("MatMul K=0")
    if node.op == "Gemm" and 0 in shapes[0]:
        found.append("Gemm zero dim")
    if node.op == "Conv" and shapes[1][1] == 0:
        found.append("Conv K=0")
    if node.op == "Conv" and node.attrs.get("group", 1) > 1 and node.attrs["group"] == shapes[0][1]:
        found.append("depthwise")
    return found


def test_generator_draws_every_op_and_the_hostile_features():
    never = sorted(set(gf.REGISTRY) - set(_drawn_ops(1500)))
    assert never == [], f"ops never drawn in a valid graph: {never}"
    features = collections.Counter()
    for op in ("Add", "Mul", "MatMul", "Gemm", "Conv"):
        for seed in range(200):
            b = gf.Builder(np.random.default_rng(seed), "f", hostile_values=True)
            try:
                gf.BUILDERS[op](b, op)
            except gf.Reject:
                continue
            for node in b.g.nodes:
                features.update(_features(node, b.g))
            for arr in list(b.feeds.values()) + [v.data for v in b.g.constants()]:
                a = np.asarray(arr)
                if a.dtype.kind == "f" and a.size:
                    features["NaN"] += int(np.isnan(a).any())
                    features["Inf"] += int(np.isinf(a).any())
                    features["denormal"] += int(((a != 0) & (np.abs(a) < np.finfo(np.float32).tiny)).any())
    for feature in ("zero-size output from a broadcast operand", "MatMul K=0", "Gemm zero dim", "Conv K=0",
                    "depthwise", "NaN", "Inf", "denormal"):
        assert features[feature] >= 3, f"generator rarely draws: {feature} ({dict(features)})"


def test_compare_rules():
    nan = np.float32("nan")
    e = np.array([1.0, nan, np.inf, 0.0], np.float32)
    assert gf.compare(e, e.copy(), 1.0) == ""
    assert "NaN" in gf.compare(e, np.array([1.0, 0.0, np.inf, 0.0], np.float32), 1.0)
    assert gf.compare(e, np.array([1.0, nan, -np.inf, 0.0], np.float32), 1.0)
    assert gf.compare(e, np.array([1.0 + 1e-6, nan, np.inf, 0.0], np.float32), 1.0) == ""
    assert gf.compare(e, np.array([1.01, nan, np.inf, 0.0], np.float32), 1.0)
    assert "shape" in gf.compare(np.zeros((0, 3), np.float32), np.zeros((3, 0), np.float32), 1.0)
    # an upstream accumulation that may overflow: the order decides +inf / -inf / NaN, and a fused
    # activation then anything (sigmoid(NaN) = NaN, sigmoid(-inf) = 0) -- but never the clamp
    e = np.array([np.inf, nan, nan, 1.0, np.inf], np.float32)
    g = np.array([-np.inf, np.inf, 0.0, 1.0, np.inf], np.float32)
    assert gf.compare(e, g, 1.0, overflow=True) == ""
    assert gf.compare(e, g, 1.0)  # without the overflow both are findings
    fmax = np.finfo(np.float32).max
    assert gf.compare(e, np.array([fmax, nan, nan, 1.0, np.inf], np.float32), 1.0, overflow=True)
    assert gf.compare(e, np.array([-np.inf, nan, nan, 1.01, np.inf], np.float32), 1.0, overflow=True)
    assert not gf.same_bits(np.array([0.0], np.float32), np.array([-0.0], np.float32))
    assert gf.same_bits(np.array([nan, 1], np.float32), np.array([nan, 1], np.float32))


@pytest.fixture(scope="module")
def runner():
    from mobconv import runtime

    if not runtime.available():
        pytest.skip("libmobrt not built")
    try:
        return gf.build_sanitized_runner()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_graph_fuzz_under_sanitizers(runner, tmp_path, capsys):
    report = gf.campaign(SECONDS, SEED, exe=runner, workdir=str(tmp_path), log=lambda text: None)
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.cases >= 20, report.summary()
    text = "\n\n".join(f.text() for f in report.findings)
    assert not report.findings, f"{report.summary()}\n\n{text}"


def _one_node_case(op, seed):
    b = gf.Builder(np.random.default_rng(seed), "acc", hostile_values=True)
    try:
        gf.BUILDERS[op](b, op)
    except gf.Reject:
        return None
    b.g.outputs.append(b.g.nodes[-1].outputs[0])
    case = gf.Case(name=f"a{seed}", graph=b.g, feeds=b.feeds, seed=seed)
    return case if gf.reference(case) else None


def test_accumulating_ops_draw_nan_inf_but_cannot_overflow():
    """The operands drawn for MatMul/Gemm/Conv/ConvTranspose/Einsum keep inf and NaN (whose result
    is the same in every order, so a dropped NaN stays a finding) but finite values within
    ACC_CAP, so the comparator is strict for them: overflow_possible is False."""
    strict_with_nan = 0
    for op in sorted(gf.ACCUMULATING):
        for seed in range(60):
            case = _one_node_case(op, seed)
            if case is None:
                continue
            out = case.graph.nodes[-1].outputs[0]
            assert not gf.overflow_possible(case, out), (op, seed, gf.describe(case.graph, case.feeds))
            arrays = list(case.feeds.values()) + [v.data for v in case.graph.constants()]
            if any(np.asarray(a).dtype.kind == "f" and np.isnan(a).any() for a in arrays):
                strict_with_nan += 1
    assert strict_with_nan >= 20


def test_a_dropped_nan_in_an_accumulating_op_is_a_finding():
    for seed in range(200):
        case = _one_node_case("MatMul", seed)
        if case is None:
            continue
        out = case.graph.nodes[-1].outputs[0]
        e = case.expected[out]
        if not np.isnan(e).any():
            continue
        dropped = np.where(np.isnan(e), np.float32(0), e)  # what a NaN-dropping kernel returns
        assert "NaN" in gf.compare(e, dropped, gf.magnitude(case, out), gf.overflow_possible(case, out))
        return
    pytest.fail("no MatMul draw with a NaN output")


# Seeds whose draw (values not capped, as the generator drew them before ACC_CAP) overflowed
# float32 products: numpy's BLAS order gave +inf / NaN where the runtime's order gave -inf / 0
# after a fused Sigmoid. The float64 sum of the exact products is -2.8e40 (MatMul) and -inf / +inf
# (ConvTranspose, inf inputs plus overflowed products), never NaN: no finding.
OVERFLOW_ORDER_SEEDS = (20261266784403, 7000294)


@pytest.mark.parametrize("seed", OVERFLOW_ORDER_SEEDS)
def test_order_dependent_overflow_is_no_finding(runner, tmp_path, monkeypatch, seed):
    monkeypatch.setattr(gf, "ACC_CAP", None)
    case = gf.draw_graph(seed)
    assert gf.reference(case)
    gf.write_case(case, str(tmp_path))
    assert not gf.check_cases(runner, [case], str(tmp_path), ["scalar"], threads=(1,))
    got = gf.load_outputs(str(tmp_path), case, "scalar", 1)
    strict = [gf.compare(case.expected[o], g, gf.magnitude(case, o)) for o, g in zip(case.graph.outputs, got)]
    assert any(strict), "the case no longer exercises the overflow rule"
    assert all(gf.overflow_possible(case, o) for o, msg in zip(case.graph.outputs, strict) if msg)


def test_sanitizer_build_is_locked_and_atomic(runner, tmp_path):
    """A concurrent build waits for the lock; the binary handed out is renamed into place."""
    import fcntl
    import threading

    assert os.path.basename(runner) != "mobrt_run" and os.access(runner, os.X_OK)
    build_dir = os.path.dirname(runner)
    result = []
    with open(build_dir + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t = threading.Thread(target=lambda: result.append(gf.build_sanitized_runner(build_dir)))
        t.start()
        t.join(2.0)
        assert t.is_alive() and not result, "the build did not wait for the lock"
        fcntl.flock(lock, fcntl.LOCK_UN)
    t.join(600)
    assert result == [runner]
    assert not [f for f in os.listdir(build_dir) if f.endswith(".tmp")]


def test_a_graph_the_writer_refuses_is_a_finding_not_a_crash(tmp_path, monkeypatch):
    """Seed 31's campaign died with a MobconvError traceback from to_bytes: a Slice with a symbolic
    input dim and +-2^62 bounds inferred dim 4611686016279904256, which the writer refuses. Such a
    graph is now reported as a 'writer-refused' finding and the campaign goes on."""
    from mobconv.errors import MobconvError

    def refuse(graph):
        raise MobconvError(f"cannot write tensor {graph.outputs[0]!r}: dim 0 has invalid size 4611686016279904256")

    monkeypatch.setattr(gf, "to_bytes", refuse)
    case = gf.draw_graph(1)
    assert case is not None and gf.reference(case)
    assert "writer refuses" in gf.encode(case)
    report = gf.campaign(0.01, 1, exe="/nonexistent", isas=["scalar"], batch=2, workdir=str(tmp_path),
                         log=lambda text: None)
    assert report.findings and {f.kind for f in report.findings} <= {"writer-refused", "infer-exception",
                                                                     "reference-exception"}
