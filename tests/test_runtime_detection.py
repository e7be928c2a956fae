"""Caffe SSD ops in the C++ runtime: PriorBox and DetectionOutput vs the numpy
references (mobconv/ops/detection.py), one op at a time over their attribute
variants, and the model_zoo/caffe SSD head end to end (converted, run by the
runtime at 1 and 2 threads, vs the numpy reference interpreter).

Detections are compared row by row after the same ordering (lexicographic
over [image, label, score, box]): equal labels/image ids, scores and box
coordinates within 1e-4.
"""
import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as reference_run

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

TOL = 1e-4


def ordered(rows):
    rows = np.asarray(rows, np.float64).reshape(-1, 7)
    return rows[np.lexsort(rows.T[::-1])]


def assert_same_detections(got, exp, where):
    assert got.shape == exp.shape, f"{where}: shape {got.shape}, expected {exp.shape}"
    a, b = ordered(got), ordered(exp)
    np.testing.assert_array_equal(a[:, :2], b[:, :2], err_msg=f"{where}: image ids / labels differ")
    np.testing.assert_allclose(a[:, 2:], b[:, 2:], rtol=0, atol=TOL, err_msg=f"{where}: scores / boxes differ")


def run_both(g, feeds, threads=1):
    infer_shapes(g)
    expected = reference_run(g, feeds)
    with runtime.Interpreter(to_bytes(g), threads=threads, isa="scalar") as it:
        got = it.run(feeds)
    return got, expected


PRIOR_CASES = {
    "caffe_default": dict(min_sizes=[6.0], max_sizes=[12.0], aspect_ratios=[2.0], variance=[0.1, 0.1, 0.2, 0.2]),
    "two_sizes_noflip_clip": dict(min_sizes=[4.0, 9.0], aspect_ratios=[2.0, 3.0, 2.0], flip=0, clip=1),
    "img_size_step": dict(min_sizes=[10.0], max_sizes=[20.0], img_size=40, step=7.5, offset=0.25),
    "img_hw_step_hw": dict(min_sizes=[5.0], aspect_ratios=[0.5], img_h=30, img_w=50, step_h=4.0, step_w=6.0),
}


@pytest.mark.parametrize("variant", sorted(PRIOR_CASES))
def test_prior_box(variant):
    g = Graph("prior_box")
    g.add_input("feature", "float32", (1, 4, 5, 7))
    g.add_input("image", "float32", (1, 3, 37, 53))
    g.add_node("PriorBox", ["feature", "image"], ["priors"], PRIOR_CASES[variant])
    g.outputs = ["priors"]
    feeds = {"feature": np.zeros((1, 4, 5, 7), np.float32), "image": np.zeros((1, 3, 37, 53), np.float32)}
    got, exp = run_both(g, feeds)
    assert got["priors"].shape == exp["priors"].shape
    np.testing.assert_allclose(got["priors"], exp["priors"], rtol=0, atol=1e-6, err_msg=variant)


def detection_inputs(rng, n, priors, classes, nlc, spread=0.2):
    centers = rng.uniform(0.1, 0.9, (priors, 2))
    sizes = rng.uniform(0.05, 0.4, (priors, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1).astype(np.float32)
    var = np.tile(np.array([0.1, 0.1, 0.2, 0.2], np.float32), (priors, 1))
    prior = np.stack([boxes.ravel(), var.ravel()])[None].astype(np.float32)
    loc = rng.normal(0, spread, (n, priors * nlc * 4)).astype(np.float32)
    logits = rng.normal(0, 2, (n, priors, classes))
    conf = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return loc, conf.reshape(n, -1).astype(np.float32), prior


DET_CASES = {
    "center_size_topk_keep": dict(code_type="CENTER_SIZE", top_k=20, keep_top_k=15, confidence_threshold=0.3,
                                  nms_threshold=0.45),
    "corner_all": dict(code_type="CORNER", confidence_threshold=0.2),
    "corner_size_eta": dict(code_type="CORNER_SIZE", nms_threshold=0.7, eta=0.9, confidence_threshold=0.1),
    "no_share_location": dict(code_type="CENTER_SIZE", share_location=0, keep_top_k=10, confidence_threshold=0.25),
    "no_background": dict(code_type="CENTER_SIZE", background_label_id=-1, keep_top_k=30, confidence_threshold=0.3),
    "variance_in_target": dict(code_type="CENTER_SIZE", variance_encoded_in_target=1, confidence_threshold=0.3),
    "none_pass": dict(code_type="CENTER_SIZE", confidence_threshold=0.999),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", sorted(DET_CASES))
def test_detection_output(variant, threads):
    rng = np.random.default_rng(sorted(DET_CASES).index(variant))
    attrs = dict(num_classes=4, **DET_CASES[variant])
    nlc = 1 if attrs.get("share_location", 1) else attrs["num_classes"]
    n, priors = 2, 60
    loc, conf, prior = detection_inputs(rng, n, priors, attrs["num_classes"], nlc)
    g = Graph("detection_output")
    g.add_input("loc", "float32", loc.shape)
    g.add_input("conf", "float32", conf.shape)
    g.add_constant("prior", prior)
    g.add_node("DetectionOutput", ["loc", "conf", "prior"], ["det"], attrs, name="det")
    g.outputs = ["det"]
    got, exp = run_both(g, {"loc": loc, "conf": conf}, threads)
    assert_same_detections(got["det"], exp["det"], variant)
    if variant == "none_pass":
        assert got["det"].shape == (1, 1, n, 7) and (got["det"][0, 0, :, 1] == -1).all()


def test_detection_output_feeding_another_op_is_refused():
    rng = np.random.default_rng(0)
    loc, conf, prior = detection_inputs(rng, 1, 8, 3, 1)
    g = Graph("det_then_relu")
    g.add_input("loc", "float32", loc.shape)
    g.add_input("conf", "float32", conf.shape)
    g.add_constant("prior", prior)
    g.add_node("DetectionOutput", ["loc", "conf", "prior"], ["det"], {"num_classes": 3}, name="det")
    g.add_node("Relu", ["det"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    with pytest.raises(runtime.RuntimeError_, match="data-dependent size"):
        runtime.Interpreter(to_bytes(g))


@pytest.fixture(scope="module")
def ssd_graph(tmp_path_factory):
    from mobconv.frontends.caffe import load_caffe
    from model_zoo.caffe.nets import build_ssd

    return load_caffe(*build_ssd(str(tmp_path_factory.mktemp("ssd"))))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("optimized", [False, True])
def test_zoo_ssd_head_end_to_end(ssd_graph, optimized, threads):
    from mobconv.passes import optimize

    graph = optimize(ssd_graph.copy()) if optimized else ssd_graph
    ops = {n.op for n in graph.nodes}
    assert {"PriorBox", "DetectionOutput"} <= ops
    feeds_total = 0
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)  # H/W symbolic
        exp = reference_run(graph, {"data": x})
        with runtime.Interpreter(to_bytes(graph), threads=threads) as it:
            got = it.run({"data": x})
            again = it.run({"data": x})  # second invoke: the output bound is re-used, same rows
        for name in graph.outputs:
            assert_same_detections(got[name], exp[name], f"ssd seed {seed} {name}")
            np.testing.assert_array_equal(again[name], got[name])
            feeds_total += int((got[name][0, 0, :, 1] >= 0).sum())
    assert feeds_total > 0, "the SSD head produced no detection at all: the test would prove nothing"
