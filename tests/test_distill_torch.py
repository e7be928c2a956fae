"""quantize.distill's PyTorch adapter: the student's forward equals the numpy reference,
pruning masks and palettes survive training, export through ONNX equals the direct route,
torch losses equal the numpy ones, and the documented loop (docs/distillation.md) runs."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import mobconv
from mobconv.api import Model
from mobconv.errors import ArgumentError, MobconvError
from mobconv.ir import Graph
from mobconv.ir.graph import WeightStorage
from mobconv.quantize import distill
from mobconv.reference.interpreter import run as reference_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "model_zoo", "onnx")


def _close(got, expected, what):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    err = np.abs(got - expected).max() if got.size else 0.0
    assert err <= 1e-5 * max(1.0, np.abs(expected).max()), f"{what}: max error {err}"


def _student_outputs(model, feeds):
    student = distill.torch_student(model)
    with torch.no_grad():
        out = student.run({k: torch.as_tensor(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def zoo():
    return {name: mobconv.convert(os.path.join(ZOO, f"digits_{name}.onnx"))
            for name in ("resnet", "mobilenetv2")}


@pytest.fixture(scope="module")
def held():
    return np.load(os.path.join(ZOO, "digits_heldout.npz"))


# ---- forward == reference ------------------------------------------------------------

def test_student_matches_the_reference_on_the_zoo_classifiers(zoo, held):
    x = held["images"][:8]
    for name, model in zoo.items():
        expected = model.run({"input": x}, backend="reference")["logits"]
        _close(_student_outputs(model, {"input": x})["logits"], expected, name)


@pytest.mark.parametrize("builder, kwargs", [
    ("tiny_cnn", None),
    ("squeezenet", {"num_classes": 10, "image_size": 48}),
    ("mobilenet_v2", {"width": 0.35, "num_classes": 10, "image_size": 32}),
])
def test_student_matches_the_reference_on_zoo_builders(builder, kwargs, tmp_path):
    if kwargs is None:
        path = os.path.join(ZOO, "tiny_cnn.onnx")
    else:
        import importlib

        import onnx

        module = importlib.import_module(f"model_zoo.onnx.{builder}")
        path = str(tmp_path / f"{builder}.onnx")
        onnx.save(getattr(module, f"build_{builder}")(**kwargs), path)
    model = mobconv.convert(path)
    feeds = model.random_inputs(seed=1)
    feeds = {k: np.concatenate([v, v[:, ::-1] * 0.5]) for k, v in feeds.items()}  # batch 2
    expected = model.run(feeds, backend="reference")
    got = _student_outputs(model, feeds)
    for name in expected:
        _close(got[name], expected[name], f"{builder} {name}")


@pytest.mark.parametrize("arch", ["mobilenetv3_small", "vit"])
def test_student_matches_the_reference_on_torch_exported_architectures(arch, tmp_path):
    import logging
    import warnings

    from model_zoo.torch.nets import build

    net, size = build(arch)
    x = torch.randn(2, 3, min(size, 32), min(size, 32), generator=torch.Generator().manual_seed(0))
    path = str(tmp_path / f"{arch}.onnx")
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                              output_names=["out"])
    finally:
        logging.disable(logging.NOTSET)
    model = mobconv.convert(path)
    expected = model.run({"input": x.numpy()}, backend="reference")["out"]
    _close(_student_outputs(model, {"input": x.numpy()})["out"], expected, arch)


def _graph(op, inputs, attrs=None, outputs=1, constants=None):
    """One-node graph: `inputs` (name -> shape for graph inputs, or array for constants)."""
    g = Graph(op)
    rng = np.random.default_rng(0)
    names, feeds = [], {}
    for name, spec in inputs:
        if spec is None:
            names.append("")
        elif isinstance(spec, tuple):
            g.add_input(name, "float32", spec)
            feeds[name] = rng.standard_normal(spec).astype(np.float32)
            names.append(name)
        else:
            g.add_constant(name, np.asarray(spec))
            names.append(name)
    outs = [f"y{i}" for i in range(outputs)]
    g.add_node(op, names, outs, attrs or {}, name=f"the_{op.lower()}")
    g.outputs = outs
    return Model(g), feeds


R = np.random.default_rng(42)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32) * 0.5


CASES = {
    "conv_asym_pads_relu_residual": ("Conv", [("x", (2, 3, 9, 7)), ("w", w(4, 3, 3, 2)), ("b", w(4)),
                                              ("r", (2, 4, 9, 7))],
                                     {"pads": [1, 0, 1, 1], "activation": "Relu"}),
    "conv_same_upper_stride2_group_clip": ("Conv", [("x", (1, 4, 11, 8)), ("w", w(6, 2, 3, 3))],
                                           {"auto_pad": "SAME_UPPER", "strides": [2, 2], "group": 2,
                                            "activation": "Clip", "activation_params": [-0.5, 0.5]}),
    "conv1d_dilated_hardswish": ("Conv", [("x", (2, 3, 13)), ("w", w(5, 3, 3)), ("b", w(5))],
                                 {"dilations": [2], "pads": [2, 2], "activation": "HardSwish"}),
    "conv_transpose_pads_output_padding": ("ConvTranspose", [("x", (1, 4, 5, 6)), ("w", w(4, 3, 3, 3)),
                                                             ("b", w(3))],
                                           {"strides": [2, 2], "pads": [1, 0, 0, 1],
                                            "output_padding": [1, 1], "activation": "LeakyRelu",
                                            "activation_params": [0.1]}),
    "gemm_trans_alpha_beta": ("Gemm", [("a", (5, 3)), ("b", w(4, 5)), ("c", w(4))],
                              {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}),
    "gemm_linear_sigmoid": ("Gemm", [("a", (3, 5)), ("b", w(4, 5)), ("c", w(4))],
                            {"transB": 1, "activation": "Sigmoid"}),
    "matmul_hardsigmoid": ("MatMul", [("a", (2, 3, 5)), ("b", w(5, 4))],
                           {"activation": "HardSigmoid", "activation_params": [0.3, 0.4]}),
    "maxpool_ceil_pads": ("MaxPool", [("x", (1, 2, 9, 10))],
                          {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1}),
    "avgpool_exclude_pad_ceil": ("AveragePool", [("x", (1, 2, 9, 10))],
                                 {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 0],
                                  "ceil_mode": 1}),
    "avgpool_include_pad": ("AveragePool", [("x", (1, 2, 8, 8))],
                            {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "global_max_pool": ("GlobalMaxPool", [("x", (2, 3, 5, 4))], {}),
    "resize_nearest_2x": ("Resize", [("x", (1, 2, 3, 4)), ("roi", None), ("s", np.array([1, 1, 2, 2], np.float32))],
                          {"mode": "nearest"}),
    "resize_nearest_asymmetric_1_5": ("Resize", [("x", (1, 2, 4, 4)), ("roi", None),
                                                 ("s", np.array([1, 1, 1.5, 1.5], np.float32))],
                                      {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}),
    "resize_linear_half_pixel": ("Resize", [("x", (1, 2, 3, 5)), ("roi", None),
                                            ("s", np.array([1, 1, 2, 1.6], np.float32))], {"mode": "linear"}),
    "resize_linear_align_corners_sizes": ("Resize", [("x", (1, 2, 3, 5)), ("roi", None), ("s", None),
                                                     ("z", np.array([1, 2, 7, 4], np.int64))],
                                          {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
    "resize_cubic": ("Resize", [("x", (1, 1, 4, 4)), ("roi", None), ("s", np.array([1, 1, 2, 2], np.float32))],
                     {"mode": "cubic"}),
    "pad_reflect": ("Pad", [("x", (1, 2, 4, 5)), ("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))],
                    {"mode": "reflect"}),
    "pad_constant_crop": ("Pad", [("x", (1, 2, 4, 5)), ("p", np.array([0, 1, -1, 2, 0, 0, 1, -2], np.int64)),
                                  ("v", np.array(0.5, np.float32))], {}),
    "batchnorm": ("BatchNormalization", [("x", (2, 3, 4, 4)), ("g", w(3)), ("b", w(3)), ("m", w(3)),
                                         ("v", np.abs(w(3)) + 0.1)], {"epsilon": 1e-3}),
    "layer_norm_last_two_axes": ("LayerNormalization", [("x", (2, 3, 4, 5)), ("g", w(4, 5)), ("b", w(4, 5))],
                                 {"axis": -2, "epsilon": 1e-3}),
    "layer_norm_broadcast_scale": ("LayerNormalization", [("x", (2, 3, 6)), ("g", w(1, 6))], {}),
    "prelu": ("PRelu", [("x", (2, 3, 4, 4)), ("s", w(3, 1, 1))], {}),
    "softmax_axis1": ("Softmax", [("x", (2, 5, 3))], {"axis": 1}),
    "logsoftmax": ("LogSoftmax", [("x", (2, 5))], {}),
    "flatten_axis2": ("Flatten", [("x", (2, 3, 4, 5))], {"axis": 2}),
    "reshape_zero_minus_one": ("Reshape", [("x", (2, 3, 4, 5)), ("s", np.array([0, -1, 5], np.int64))], {}),
    "transpose": ("Transpose", [("x", (2, 3, 4))], {"perm": [2, 0, 1]}),
    "concat": ("Concat", [("a", (2, 3, 4)), ("b", (2, 1, 4))], {"axis": -2}),
    "slice_negative_step": ("Slice", [("x", (4, 6)), ("st", np.array([-1, 1], np.int64)),
                                      ("en", np.array([-10, 5], np.int64)), ("ax", np.array([1, 0], np.int64)),
                                      ("sp", np.array([-2, 2], np.int64))], {}),
    "gather": ("Gather", [("x", (5, 4)), ("i", np.array([[0, -1], [2, 2]], np.int64))], {"axis": 1}),
    "split": ("Split", [("x", (2, 7)), ("s", np.array([3, 4], np.int64))], {"axis": 1}, 2),
    "clip_min_only": ("Clip", [("x", (3, 4)), ("lo", np.array(-0.2, np.float32))], {}),
    "leaky_relu": ("LeakyRelu", [("x", (3, 4))], {"alpha": 0.2}),
    "hardswish": ("HardSwish", [("x", (3, 4))], {}),
    "reduce_mean": ("ReduceMean", [("x", (2, 3, 4)), ("a", np.array([1, -1], np.int64))], {"keepdims": 0}),
    "squeeze": ("Squeeze", [("x", (2, 1, 3, 1)), ("a", np.array([1], np.int64))], {}),
    "unsqueeze": ("Unsqueeze", [("x", (2, 3)), ("a", np.array([0, -1], np.int64))], {}),
    "div": ("Div", [("a", (2, 3)), ("b", np.abs(w(3)) + 0.5)], {}),
    "sum": ("Sum", [("a", (2, 3)), ("b", (2, 3)), ("c", w(3))], {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_student_op_matches_the_reference(case):
    op, inputs, attrs, *n_out = CASES[case]
    model, feeds = _graph(op, inputs, attrs, *n_out)
    expected = reference_run(model.graph, feeds)
    got = _student_outputs(model, feeds)
    for name in expected:
        _close(got[name], expected[name], f"{case} {name}")


def test_unsupported_op_is_one_line_naming_the_node():
    model, _ = _graph("TopK", [("x", (2, 5)), ("k", np.array([2], np.int64))], {}, 2)
    model.source = "net.mob"
    with pytest.raises(ArgumentError) as err:
        distill.torch_student(model)
    message = str(err.value)
    assert "\n" not in message and "'the_topk' (TopK)" in message and "net.mob" in message


def test_quantized_model_is_refused():
    from mobconv.ir.graph import QuantParams

    model, _ = _graph("Relu", [("x", (2, 3))])
    model.graph.values["x"].quant = QuantParams([0.1], [0])
    with pytest.raises(ArgumentError, match="tensor 'x' is quantized; build the student from the float32"):
        distill.torch_student(model)


# ---- masks and palettes survive training ------------------------------------------------

def _train(student, feeds, steps=5, lr=0.05):
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9, weight_decay=0.1)
    x = {k: torch.as_tensor(v) for k, v in feeds.items()}
    for _ in range(steps):
        out = student(**x)
        loss = (out ** 2).mean() if isinstance(out, torch.Tensor) else sum((o ** 2).mean() for o in out)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_pruned_weights_stay_zero_through_training_and_export():
    from mobconv import quantize

    pruned = quantize.prune(os.path.join(ZOO, "tiny_cnn.onnx"), 0.5, min_params=10)
    sparse = {v.name: v.data == 0 for v in pruned.graph.values.values()
              if v.storage is not None and v.storage.kind == "sparse"}
    assert len(sparse) == 2
    student = distill.torch_student(pruned)
    _train(student, pruned.random_inputs(seed=3), steps=5, lr=0.01)
    trained = student.weights()
    for name, zeros in sparse.items():
        assert np.isfinite(trained[name]).all(), name
        np.testing.assert_array_equal(trained[name] == 0, zeros, err_msg=name)
        assert not np.array_equal(trained[name], pruned.graph.values[name].data), name  # it did train
    student.apply_masks()
    raw = dict(student.named_parameters())
    assert all((raw[student.keys[n]].detach().numpy()[zeros] == 0).all() for n, zeros in sparse.items())
    exported = distill.export(student, like=pruned, route="direct")
    for name, zeros in sparse.items():
        value = exported.graph.values[name]
        assert value.storage.kind == "sparse"
        np.testing.assert_array_equal(value.data == 0, zeros)


def test_palette_weights_train_their_centroids_only():
    model, feeds = _graph("Conv", [("x", (2, 3, 6, 6)), ("w", w(4, 3, 3, 3)), ("b", w(4))], {"pads": [1, 1, 1, 1]})
    weight = model.graph.values["w"]
    palette = np.array([-0.5, 0.0, 0.25, 0.75], np.float32)
    indices = np.random.default_rng(0).integers(0, 4, weight.data.shape)
    weight.data = palette[indices]
    weight.storage = WeightStorage("palette", 2)
    student = distill.torch_student(model)
    _train(student, feeds)
    trained = student.weights()["w"]
    values, inverse = np.unique(trained, return_inverse=True)
    assert len(values) <= 4
    for k in range(4):  # elements that shared a centroid still share one
        assert len(np.unique(trained[indices == k])) == 1
    assert (trained[indices == 1] == 0).all()  # the zero centroid stays zero
    assert not np.allclose(trained[indices == 0], -0.5)  # the others moved
    out = distill.export(student, like=model)
    assert out.graph.values["w"].storage == WeightStorage("palette", 2)


# ---- export: ONNX route == direct route ---------------------------------------------------

def test_export_through_onnx_matches_the_direct_route(zoo, held):
    from mobconv import quantize

    pruned = quantize.prune(zoo["mobilenetv2"], 0.5)
    pruned.graph.signature.inputs[0].layout = "NCHW"
    pruned.graph.metadata.extra["note"] = "kept"
    student = distill.torch_student(pruned)
    _train(student, {"input": held["images"][:4]}, steps=1, lr=0.01)
    direct = distill.export(student, like=pruned, route="direct")
    onnx_route = distill.export(student, like=pruned)
    x = held["images"][:6]
    _close(onnx_route.run({"input": x}, backend="reference")["logits"],
           direct.run({"input": x}, backend="reference")["logits"], "onnx vs direct")
    with torch.no_grad():
        _close(student(torch.as_tensor(x)).numpy(),
               direct.run({"input": x}, backend="reference")["logits"], "student vs direct")
    storage = lambda m: {v.name: v.storage for v in m.graph.values.values() if v.storage is not None}
    assert storage(onnx_route) == storage(direct) == storage(pruned)
    assert [n.name for n in onnx_route.graph.nodes] == [n.name for n in pruned.graph.nodes]
    assert onnx_route.graph.signature == pruned.graph.signature
    assert onnx_route.metadata.extra["note"] == "kept"
    assert onnx_route.metadata.extra["compression.distill"] == "fine-tuned weights (onnx route)"
    assert pruned.metadata.extra.get("compression.distill") is None  # the input is untouched


def test_export_refuses_a_student_of_another_model(zoo):
    student = distill.torch_student(zoo["resnet"])
    with pytest.raises(ArgumentError, match="was not built from"):
        distill.export(student, like=zoo["mobilenetv2"])


# ---- torch losses == numpy losses ---------------------------------------------------------

def test_torch_losses_equal_the_numpy_ones_and_are_differentiable():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((6, 10)).astype(np.float64), rng.standard_normal((6, 10))
    fs, ft = rng.standard_normal((6, 2, 3, 3)), rng.standard_normal((6, 4, 3, 3))
    labels = rng.integers(0, 10, 6)
    s_t = torch.tensor(s, requires_grad=True)
    for T in (1.0, 4.0):
        got = distill.kl_loss(s_t, t, temperature=T)
        assert got.item() == pytest.approx(distill.kl_loss(s, t, temperature=T), rel=1e-9)
        kl = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(s_t / T, 1),
                                                       torch.softmax(torch.tensor(t) / T, 1)) * T * T
        assert got.item() == pytest.approx(kl.item(), rel=1e-9)
    fs_t = torch.tensor(fs, requires_grad=True)
    assert distill.feature_mse(fs_t, ft, [3, 0]).item() == pytest.approx(distill.feature_mse(fs, ft, [3, 0]))
    total = distill.distillation_loss(s_t, t, labels=torch.as_tensor(labels), temperature=2.0, alpha=0.6,
                                      features={"f": (fs_t, ft)}, channel_maps={"f": [3, 0]})
    assert total.item() == pytest.approx(distill.distillation_loss(
        s, t, labels=labels, temperature=2.0, alpha=0.6, features={"f": (fs, ft)},
        channel_maps={"f": [3, 0]}), rel=1e-9)
    total.backward()
    assert s_t.grad is not None and fs_t.grad is not None and float(s_t.grad.abs().sum()) > 0


# ---- the documented loop ---------------------------------------------------------------------

def test_the_documented_loop_runs(tmp_path):
    text = open(os.path.join(ROOT, "docs", "distillation.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    (tmp_path / "loop.py").write_text(blocks[0])
    os.symlink(os.path.join(ROOT, "model_zoo"), tmp_path / "model_zoo")
    env = dict(os.environ, DISTILL_EPOCHS="1", DISTILL_STEPS="2", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "loop.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    match = re.search(r"top-1 original ([\d.]+), pruned ([\d.]+), pruned \+ 1 epochs of distillation "
                      r"([\d.]+)", out.stdout)
    assert match, out.stdout
    assert float(match.group(1)) > 0.98 and float(match.group(3)) > 0.9
    tuned = mobconv.load(str(tmp_path / "resnet_pruned_tuned.mob"))
    assert any(v.storage is not None and v.storage.kind == "sparse" for v in tuned.graph.values.values())


# ---- after channel pruning: the channel map from the pruner's metadata ------------------------

def test_feature_loss_after_channel_pruning_uses_the_recorded_channel_map(tmp_path):
    from mobconv import quantize

    teacher = mobconv.convert(os.path.join(ZOO, "tiny_cnn.onnx"))
    small = quantize.prune_channels(teacher, 0.5)
    first = small.graph.nodes[0].outputs[0]  # the first conv reads the image: kept channels are exact
    kept = distill.channel_map_of(small, first)
    channels = teacher.graph.values[teacher.graph.nodes[0].inputs[1]].data.shape[0]
    assert kept is not None and 0 < len(kept) < channels
    assert distill.channel_map_of(small, "no such value") is None
    path = str(tmp_path / "teacher.mob")
    teacher.save(path)
    x = teacher.random_inputs(seed=5)["input"]
    (feeds, t), = list(distill.teacher_outputs(path, x, features=[first]))
    student = distill.torch_student(small)
    expected = small.run(feeds, backend="reference")
    out = student.run(feeds["input"], features=[first])
    _close(out["probs"].detach().numpy(), expected["probs"], "channel-pruned student")
    assert distill.feature_mse(out[first].detach().numpy(), t[first], kept) < 1e-10
    assert distill.feature_mse(out[first].detach().numpy(), t[first], kept[::-1]) > 1e-3
    loss = distill.distillation_loss(out["probs"], t["probs"], features={first: (out[first], t[first])},
                                     channel_maps={first: kept})
    loss.backward()


def test_student_and_export_refuse_bad_arguments_in_one_line(zoo):
    with pytest.raises(ArgumentError, match=r"^torch_student\(\): expected a mobconv.Model"):
        distill.torch_student([1, 2])
    student = distill.torch_student(zoo["resnet"])
    with pytest.raises(ArgumentError, match="route must be one of onnx, direct"):
        distill.export(student, like=zoo["resnet"], route="tflite")
    with pytest.raises(ArgumentError, match="student must come from distill.torch_student"):
        distill.export(torch.nn.Linear(2, 2), like=zoo["resnet"])
    with pytest.raises(ArgumentError, match="missing input 'input'"):
        student(bogus=np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(MobconvError) as err:  # a wrong shape names the node, one line
        student(np.zeros((1, 3, 28, 28), np.float32))
    assert "\n" not in str(err.value) and "node '/features/features.0/features.0.0/Conv' (Conv)" in str(err.value)


def test_pruned_then_clustered_model_keeps_palette_and_zeros_through_training(tmp_path):
    from mobconv import quantize

    pruned = quantize.prune(os.path.join(ZOO, "tiny_cnn.onnx"), 0.5, min_params=10)
    clustered = quantize.cluster(pruned, 4)
    palettes = {v.name: v for v in clustered.graph.values.values()
                if v.storage is not None and v.storage.kind == "palette"}
    assert palettes and all((v.data == 0).mean() > 0.3 for v in palettes.values())  # pruned zeros kept
    student = distill.torch_student(clustered)
    _train(student, clustered.random_inputs(seed=2), steps=3, lr=0.01)
    tuned = distill.export(student, like=clustered, path=str(tmp_path / "tuned.mob"))
    loaded = mobconv.load(str(tmp_path / "tuned.mob"))
    for name, before in palettes.items():
        after = loaded.graph.values[name]
        assert after.storage == before.storage, name
        assert len(np.unique(after.data)) <= 4 and not np.array_equal(after.data, before.data), name
        np.testing.assert_array_equal(after.data == 0, before.data == 0, err_msg=name)
    feeds = clustered.random_inputs(seed=4)
    _close(loaded.run(feeds, backend="runtime")["probs"], tuned.run(feeds, backend="reference")["probs"],
           "runtime vs reference")
