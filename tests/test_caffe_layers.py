"""Single-layer Caffe nets: mobconv vs OpenCV's Caffe importer where OpenCV
implements the layer as Caffe does, else vs a hand-written numpy formula of
Caffe's semantics. OpenCV gaps found (checked by hand): no Threshold, Clip,
Bias, ArgMax, Reduction, Upsample layers; Slice with several tops is not
addressable by top name; Log ignores base/scale/shift; InnerProduct ignores
transpose; LRN ignores k; Tile needs a parameter Caffe does not have.
"""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mobconv.frontends.caffe import load_caffe  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402
from model_zoo.caffe._builder import NetBuilder  # noqa: E402

S = (1, 4, 7, 9)
T = (2, 3, 4, 5)


def make(tmp_path, shape, build, name="net"):
    n = NetBuilder(name, seed=11)
    n.input("data", shape)
    build(n)
    prototxt, caffemodel = n.save(str(tmp_path))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    graph = load_caffe(prototxt, caffemodel)
    return graph, run(graph, {"data": x}), x, (prototxt, caffemodel)


def vs_opencv(tmp_path, shape, build):
    graph, ours, x, files = make(tmp_path, shape, build)
    net = cv2.dnn.readNetFromCaffe(*files)
    net.setInput(x)
    for name, theirs in zip(graph.outputs, net.forward(graph.outputs)):
        a = ours[name]
        assert a.size == theirs.size, (a.shape, theirs.shape)
        err = np.abs(a - theirs.reshape(a.shape)).max() / max(np.abs(theirs).max(), 1e-12)
        assert err < 1e-4, (name, err)


P = lambda **kw: kw  # noqa: E731
OPENCV_CASES = {
    "elu": (S, lambda n: n.layer("ELU", "y", "data", elu_param={"alpha": 0.7})),
    "sigmoid": (S, lambda n: n.layer("Sigmoid", "y", "data")),
    "tanh": (S, lambda n: n.layer("TanH", "y", "data")),
    "absval": (S, lambda n: n.layer("AbsVal", "y", "data")),
    "power": (S, lambda n: n.layer("Power", "y", "data", power_param={"power": 2.0, "scale": 0.5, "shift": 3.0})),
    "exp": (S, lambda n: n.layer("Exp", "y", "data", exp_param={"base": 2.0, "scale": 0.5, "shift": 0.1})),
    "bnll": (S, lambda n: n.layer("BNLL", "y", "data")),
    "leaky_relu": (S, lambda n: n.layer("ReLU", "y", "data", relu_param={"negativeSlope": 0.1})),
    "relu6": (S, lambda n: (n.layer("Power", "a", "data", power_param={"scale": 5.0}), n.layer("ReLU6", "y", "a"))),
    "prelu": (S, lambda n: n.layer("PReLU", "y", "data", None, [np.array([0.1, 0.2, 0.3, 0.4], np.float32)])),
    "prelu_shared": (S, lambda n: n.layer("PReLU", "y", "data", None, [np.array([0.3], np.float32)],
                                          prelu_param={"channelShared": True})),
    "deconv_group": (S, lambda n: n.layer("Deconvolution", "y", "data", None, [n.randn(4, 3, 3, 3), n.randn(6)],
                                          convolution_param={"numOutput": 6, "kernelSize": [3], "stride": [2],
                                                             "pad": [1], "group": 2})),
    "conv_hw_dilation_nobias": (S, lambda n: n.layer("Convolution", "y", "data", None, [n.randn(5, 4, 3, 2)],
                                                     convolution_param={"numOutput": 5, "kernelH": 3, "kernelW": 2,
                                                                        "strideH": 2, "strideW": 1, "padH": 1,
                                                                        "padW": 2, "dilation": [2],
                                                                        "biasTerm": False})),
    "ip_axis2": (T, lambda n: n.layer("InnerProduct", "y", "data", None, [n.randn(6, 20), n.randn(6)],
                                      inner_product_param={"numOutput": 6, "axis": 2})),
    "pool_hw_ave": ((1, 2, 7, 10), lambda n: n.layer("Pooling", "y", "data", pooling_param={
        "pool": "AVE", "kernelH": 3, "kernelW": 2, "strideH": 2, "strideW": 3, "padH": 1, "padW": 1})),
    "lrn_within_channel": (S, lambda n: n.layer("LRN", "y", "data", lrn_param={
        "localSize": 3, "alpha": 0.5, "beta": 0.75, "normRegion": "WITHIN_CHANNEL"})),
    "batchnorm_factor": (S, lambda n: n.layer("BatchNorm", "y", "data", None, [
        n.randn(4), np.abs(n.randn(4)) + 0.5, np.array([2.0], np.float32)], batch_norm_param={"eps": 1e-3})),
    "scale_axis_num_axes": (T, lambda n: n.layer("Scale", "y", "data", None, [n.randn(3, 4), n.randn(3, 4)],
                                                 scale_param={"axis": 1, "numAxes": 2, "biasTerm": True})),
    "scale_two_bottoms": (T, lambda n: (
        n.layer("Pooling", "p", "data", pooling_param={"pool": "AVE", "globalPooling": True}),
        n.layer("Reshape", "r", "p", reshape_param={"shape": {"dim": [0, -1]}}),
        n.layer("Scale", "y", ["data", "r"], scale_param={"axis": 0}))),
    "eltwise_sum_coeff": (S, lambda n: (n.layer("TanH", "t", "data"), n.layer(
        "Eltwise", "y", ["data", "t"], eltwise_param={"operation": "SUM", "coeff": [0.5, -2.0]}))),
    "eltwise_prod3": (S, lambda n: (n.layer("TanH", "t", "data"), n.layer(
        "Eltwise", "y", ["data", "t", "data"], eltwise_param={"operation": "PROD"}))),
    "eltwise_max": (S, lambda n: (n.layer("TanH", "t", "data"), n.layer(
        "Eltwise", "y", ["data", "t"], eltwise_param={"operation": "MAX"}))),
    "flatten_axes": (T, lambda n: n.layer("Flatten", "y", "data", flatten_param={"axis": 1, "endAxis": 2})),
    "reshape": (T, lambda n: n.layer("Reshape", "y", "data", reshape_param={"shape": {"dim": [0, -1, 10]}})),
    "reshape_axis": (T, lambda n: n.layer("Reshape", "y", "data", reshape_param={
        "shape": {"dim": [2, 2]}, "axis": 2, "numAxes": 1})),
    "permute": (T, lambda n: n.layer("Permute", "y", "data", permute_param={"order": [0, 3, 1, 2]})),
    "crop": ((1, 3, 9, 9), lambda n: (
        n.layer("Pooling", "p", "data", pooling_param={"pool": "MAX", "kernelSize": 2, "stride": 2}),
        n.layer("Crop", "y", ["data", "p"], crop_param={"axis": 2, "offset": [1, 2]}))),
    "softmax_axis": (T, lambda n: n.layer("Softmax", "y", "data", softmax_param={"axis": 2})),
    "shuffle_channel": ((1, 6, 3, 4), lambda n: n.layer("ShuffleChannel", "y", "data",
                                                        shuffle_channel_param={"group": 3})),
    "interp_zoom": ((1, 2, 5, 6), lambda n: n.layer("Interp", "y", "data", interp_param={"zoomFactor": 2})),
    "interp_size": ((1, 2, 5, 6), lambda n: n.layer("Interp", "y", "data", interp_param={"height": 9, "width": 4})),
    "mvn": (S, lambda n: n.layer("MVN", "y", "data", mvn_param={"acrossChannels": True})),
    "normalize_shared": (S, lambda n: n.layer("Normalize", "y", "data", None, [np.array([3.0], np.float32)])),
    "concat_negative_axis": (S, lambda n: n.layer("Concat", "y", ["data", "data"], concat_param={"axis": -1})),
}
# Caffe pooling geometry: ceil-mode sizes, clipped last windows, AVE divisors.
for _k, _s, _p in [(3, 2, 0), (3, 2, 1), (2, 2, 1), (3, 3, 1), (4, 3, 2), (5, 3, 2)]:
    for _m in ("MAX", "AVE"):
        OPENCV_CASES[f"pool_{_m}_k{_k}s{_s}p{_p}"] = ((1, 2, 7, 10), lambda n, m=_m, k=_k, s=_s, p=_p: n.layer(
            "Pooling", "y", "data", pooling_param={"pool": m, "kernelSize": k, "stride": s, "pad": p}))


@pytest.mark.parametrize("case", list(OPENCV_CASES))
def test_layer_matches_opencv(tmp_path, case):
    shape, build = OPENCV_CASES[case]
    vs_opencv(tmp_path, shape, build)


# ---- layers OpenCV lacks or gets wrong: hand-checked numpy ----------------------------


def test_threshold(tmp_path):
    _, y, x, _ = make(tmp_path, S, lambda n: n.layer("Threshold", "y", "data", threshold_param={"threshold": 0.2}))
    np.testing.assert_array_equal(y["y"], (x > 0.2).astype(np.float32))


def test_clip(tmp_path):
    _, y, x, _ = make(tmp_path, S, lambda n: n.layer("Clip", "y", "data", clip_param={"min": -0.5, "max": 0.7}))
    np.testing.assert_array_equal(y["y"], np.clip(x, -0.5, 0.7))


def test_bias_learned(tmp_path):
    b = np.array([1.0, -2.0, 3.0], np.float32)
    _, y, x, _ = make(tmp_path, T, lambda n: n.layer("Bias", "y", "data", None, [b]))
    np.testing.assert_allclose(y["y"], x + b[:, None, None], rtol=1e-6)


def test_log_base_scale_shift(tmp_path):  # OpenCV ignores the parameters
    _, y, x, _ = make(tmp_path, S, lambda n: (n.layer("AbsVal", "a", "data"), n.layer(
        "Log", "y", "a", log_param={"base": 10.0, "scale": 2.0, "shift": 1.0})))
    np.testing.assert_allclose(y["y"], np.log10(1 + 2 * np.abs(x)), rtol=1e-5, atol=1e-6)


def test_inner_product_transpose(tmp_path):  # OpenCV ignores transpose
    w, b = (np.random.default_rng(3).standard_normal(s).astype(np.float32) for s in ((60, 7), (7,)))
    _, y, x, _ = make(tmp_path, T, lambda n: n.layer("InnerProduct", "y", "data", None, [w, b], inner_product_param={
        "numOutput": 7, "transpose": True}))
    np.testing.assert_allclose(y["y"], x.reshape(2, -1) @ w + b, rtol=1e-5, atol=1e-5)


def test_lrn_across_channels_k(tmp_path):  # OpenCV ignores k
    _, y, x, _ = make(tmp_path, S, lambda n: n.layer("LRN", "y", "data", lrn_param={
        "localSize": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}))
    sq = np.pad(x ** 2, [(0, 0), (1, 1), (0, 0), (0, 0)])
    window = sq[:, 0:4] + sq[:, 1:5] + sq[:, 2:6]
    np.testing.assert_allclose(y["y"], x / (2 + 0.5 / 3 * window) ** 0.75, rtol=1e-5)


def test_argmax_forms(tmp_path):
    def build(n):
        n.layer("ArgMax", "flat_top2", "data", argmax_param={"topK": 2})
        n.layer("ArgMax", "axis1", "data", argmax_param={"axis": 1})
        n.layer("ArgMax", "flat_val", "data", argmax_param={"outMaxVal": True, "topK": 3})
    _, y, x, _ = make(tmp_path, T, build)
    flat = x.reshape(2, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    np.testing.assert_array_equal(y["flat_top2"], order[:, None, :2].astype(np.float32))
    np.testing.assert_array_equal(y["axis1"], x.argmax(1)[:, None].astype(np.float32))
    expected = np.stack([order[:, :3], np.take_along_axis(flat, order[:, :3], 1)], axis=1)
    np.testing.assert_allclose(y["flat_val"], expected.astype(np.float32))


def test_reduction(tmp_path):
    def build(n):
        n.layer("Reduction", "sumsq", "data", reduction_param={"operation": "SUMSQ", "axis": 1, "coeff": 0.5})
        n.layer("Reduction", "asum", "data", reduction_param={"operation": "ASUM"})
        n.layer("Reduction", "mean", "data", reduction_param={"operation": "MEAN", "axis": -1})
    _, y, x, _ = make(tmp_path, T, build)
    np.testing.assert_allclose(y["sumsq"], 0.5 * (x ** 2).reshape(2, -1).sum(1), rtol=1e-5)
    np.testing.assert_allclose(y["asum"], np.abs(x).sum(), rtol=1e-5)
    np.testing.assert_allclose(y["mean"], x.mean(-1), rtol=1e-5, atol=1e-6)


def test_upsample_nearest(tmp_path):
    _, y, x, _ = make(tmp_path, (1, 2, 3, 4), lambda n: n.layer("Upsample", "y", "data", upsample_param={"scale": 2}))
    np.testing.assert_array_equal(y["y"], x.repeat(2, axis=2).repeat(2, axis=3))


def test_tile(tmp_path):
    _, y, x, _ = make(tmp_path, S, lambda n: n.layer("Tile", "y", "data", tile_param={"axis": 2, "tiles": 3}))
    np.testing.assert_array_equal(y["y"], np.tile(x, (1, 1, 3, 1)))


def test_slice_points_and_equal(tmp_path):
    def build(n):
        n.layer("Slice", "s1", "data", ["a", "b", "c"], slice_param={"axis": 1, "slicePoint": [1, 3]})
        n.layer("Slice", "s2", "data", ["d", "e", "f"], slice_param={"axis": 3})
    graph, y, x, _ = make(tmp_path, (1, 4, 2, 9), build)
    for name, part in zip("abc", np.split(x, [1, 3], axis=1)):
        np.testing.assert_array_equal(y[name], part)
    for name, part in zip("def", np.split(x, 3, axis=3)):
        np.testing.assert_array_equal(y[name], part)
