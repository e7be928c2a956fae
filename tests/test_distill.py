"""quantize.distill without torch: teacher outputs/features streamed from the C++ runtime,
and the numpy losses checked against independent formulas (scipy)."""
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from scipy.special import log_softmax, rel_entr, softmax

import mobconv
from mobconv.errors import ArgumentError
from mobconv.quantize import distill
from mobconv.reference.interpreter import run as reference_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "model_zoo", "onnx", "tiny_cnn.onnx")


@pytest.fixture(scope="module")
def tiny():
    return mobconv.convert(TINY)


@pytest.fixture(scope="module")
def tiny_path(tiny, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("distill") / "tiny.mob")
    tiny.save(path)
    return path


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def _mid_features(model):
    """Two intermediate values: the first Conv's output and the pooled one."""
    convs = [n for n in model.graph.nodes if n.op == "Conv"]
    pooled = next(n for n in model.graph.nodes if n.op == "GlobalAveragePool")
    return [convs[0].outputs[0], pooled.outputs[0]]


# ---- teacher outputs -----------------------------------------------------------

def test_teacher_outputs_and_features_match_the_numpy_reference(tiny, tiny_path):
    features = _mid_features(tiny)
    x = _images(10)
    batches = list(distill.teacher_outputs(tiny_path, x, features=features, batch_size=4))
    assert [f["input"].shape[0] for f, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([f["input"] for f, _ in batches]), x)  # order kept
    expected = reference_run(tiny.graph, {"input": x}, keep_intermediates=True)
    for name in ["probs"] + features:
        got = np.concatenate([t[name] for _, t in batches])
        np.testing.assert_allclose(got, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert set(batches[0][1]) == {"probs", *features}


def test_teacher_outputs_keeps_each_item_as_a_batch_with_batch_size_none(tiny):
    items = [{"input": _images(3, seed=1)}, {"input": _images(5, seed=2)}]
    batches = list(distill.teacher_outputs(tiny, items, batch_size=None))
    assert [f["input"].shape[0] for f, _ in batches] == [3, 5]
    np.testing.assert_allclose(batches[1][1]["probs"],
                               reference_run(tiny.graph, items[1])["probs"], rtol=1e-4, atol=1e-6)


def test_teacher_outputs_splits_items_across_batches(tiny):
    items = [{"input": _images(3, seed=1)}, {"input": _images(5, seed=2)}]
    batches = list(distill.teacher_outputs(tiny, items, batch_size=2))
    assert [f["input"].shape[0] for f, _ in batches] == [2, 2, 2, 2]
    np.testing.assert_array_equal(np.concatenate([f["input"] for f, _ in batches]),
                                  np.concatenate([i["input"] for i in items]))


def test_teacher_outputs_reads_a_folder(tiny, tmp_path):
    x = _images(5, seed=3)
    for i in range(5):
        np.save(tmp_path / f"s{i}.npy", x[i:i + 1])
    batches = list(distill.teacher_outputs(tiny, str(tmp_path), batch_size=3))
    np.testing.assert_array_equal(np.concatenate([f["input"] for f, _ in batches]), x)


def test_teacher_stream_memory_is_bounded_by_one_batch(tiny):
    features = _mid_features(tiny)  # the first conv's output: 8 x 32 x 32 floats per sample

    def samples(n):
        rng = np.random.default_rng(0)
        for _ in range(n):
            yield {"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)}

    def peak(n):
        tracemalloc.start()
        try:
            count = 0
            for feeds, t in distill.teacher_outputs(tiny, samples(n), features=features, batch_size=8):
                count += feeds["input"].shape[0]
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short_count, short_peak = peak(16)
    long_count, long_peak = peak(320)
    assert (short_count, long_count) == (16, 320)
    per_batch = 8 * (3 + 8) * 32 * 32 * 4  # input + first feature of one batch
    assert long_peak < short_peak + per_batch, (short_peak, long_peak)  # not growing with the stream
    assert long_peak < 10 * per_batch, long_peak


def test_teacher_outputs_names_the_unknown_feature(tiny, tiny_path):
    name = _mid_features(tiny)[0]
    with pytest.raises(ArgumentError) as err:
        distill.teacher_outputs(tiny_path, _images(2), features=[name + "x"])
    message = str(err.value)
    assert "\n" not in message and tiny_path in message and repr(name + "x") in message
    assert name in message  # the closest name


@pytest.mark.parametrize("kwargs, words", [
    ({"features": ["__weight__"]}, "constant"),
    ({"outputs": ["__feature__"]}, "not a graph output"),
    ({"batch_size": 0}, "batch_size"),
    ({"features": [3]}, "strings"),
])
def test_teacher_outputs_refuses_bad_arguments_before_any_work(tiny, kwargs, words):
    weight = next(v.name for v in tiny.graph.constants())
    feature = _mid_features(tiny)[0]
    kwargs = {k: [weight if x == "__weight__" else feature if x == "__feature__" else x
                  for x in v] if isinstance(v, list) else v for k, v in kwargs.items()}
    with pytest.raises(ArgumentError, match=words):
        distill.teacher_outputs(tiny, _images(2), **kwargs)


def test_runtime_observe_copies_only_the_named_tensors(tiny):
    from mobconv.runtime import Interpreter

    name = _mid_features(tiny)[0]
    seen = []
    with Interpreter(tiny.to_bytes()) as it:
        it.run({"input": _images(1)}, observer=lambda i, n, t, tensors: seen.append(set(tensors)),
               observe={name})
    assert set().union(*seen) == {name}
    assert sum(1 for s in seen if s) == 1


# ---- numpy losses vs independent formulas ------------------------------------------

def test_kl_loss_is_hinton_t2_scaled_kl():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((6, 10)) * 3, rng.standard_normal((6, 10)) * 3
    for T in (1.0, 4.0):
        expected = T * T * rel_entr(softmax(t / T, axis=1), softmax(s / T, axis=1)).sum(axis=1).mean()
        assert distill.kl_loss(s.astype(np.float32), t.astype(np.float32), temperature=T) == \
            pytest.approx(expected, rel=1e-5)
    assert distill.kl_loss(t, t) == pytest.approx(0.0, abs=1e-12)


def test_kl_loss_on_a_class_axis_other_than_the_last():
    rng = np.random.default_rng(1)
    s, t = rng.standard_normal((2, 5, 3, 3)), rng.standard_normal((2, 5, 3, 3))
    expected = 4.0 * rel_entr(softmax(t / 2, axis=1), softmax(s / 2, axis=1)).sum(axis=1).mean()
    assert distill.kl_loss(s, t, temperature=2.0, axis=1) == pytest.approx(expected, rel=1e-9)


def test_feature_mse_with_a_channel_map():
    rng = np.random.default_rng(2)
    teacher = rng.standard_normal((2, 6, 4, 4))
    kept = [5, 0, 3]
    student = rng.standard_normal((2, 3, 4, 4))
    total = 0.0
    for n in range(2):
        for c, k in enumerate(kept):
            total += ((student[n, c] - teacher[n, k]) ** 2).sum()
    assert distill.feature_mse(student, teacher, channel_map=kept) == pytest.approx(total / student.size)
    assert distill.feature_mse(teacher, teacher) == 0.0


def test_distillation_loss_combines_its_terms():
    rng = np.random.default_rng(3)
    s, t = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    labels = np.array([1, 2, 3, 4])
    fs, ft = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 5, 3))
    ce = -log_softmax(s, axis=1)[np.arange(4), labels].mean()
    kl = 9.0 * rel_entr(softmax(t / 3, axis=1), softmax(s / 3, axis=1)).sum(axis=1).mean()
    mse = ((fs - ft[:, [4, 1]]) ** 2).mean()
    got = distill.distillation_loss(s, t, labels=labels, temperature=3.0, alpha=0.7,
                                    features={"f": (fs, ft)}, channel_maps={"f": [4, 1]},
                                    feature_weight=0.5)
    assert got == pytest.approx(0.7 * kl + 0.3 * ce + 0.5 * mse, rel=1e-9)
    assert distill.distillation_loss(s, t, temperature=3.0) == pytest.approx(kl, rel=1e-9)


@pytest.mark.parametrize("call, words", [
    (lambda: distill.kl_loss(np.zeros((2, 3)), np.zeros((2, 3)), temperature=0), "temperature"),
    (lambda: distill.kl_loss(np.zeros((2, 3)), np.zeros((2, 4))), "differs"),
    (lambda: distill.feature_mse(np.zeros((1, 2, 3)), np.zeros((1, 4, 3)), [0]), "2 channels"),
    (lambda: distill.feature_mse(np.zeros((1, 2, 3)), np.zeros((1, 4, 3)), [0, 4]), "entry 4"),
    (lambda: distill.distillation_loss(np.zeros((2, 3)), np.zeros((2, 3)), alpha=1.5), "alpha"),
    (lambda: distill.distillation_loss(np.zeros((2, 3)), np.zeros((2, 3)), channel_maps={"x": [0]}),
     "not in features"),
])
def test_losses_refuse_bad_arguments_in_one_line(call, words):
    with pytest.raises(ArgumentError, match=words) as err:
        call()
    assert "\n" not in str(err.value)


def test_the_package_imports_and_streams_without_torch(tiny_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None   # import torch -> ImportError
        import numpy as np
        from mobconv.quantize import distill
        x = np.zeros((3, 3, 32, 32), np.float32)
        (feeds, t), = list(distill.teacher_outputs({tiny_path!r}, x, batch_size=4))
        print(distill.kl_loss(t["probs"], t["probs"]))
        try:
            distill.torch_student({tiny_path!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert float(lines[0]) == pytest.approx(0.0, abs=1e-9)
    assert lines[1] == "MobconvError quantize.distill's PyTorch adapter needs torch (pip install torch)"


@pytest.mark.parametrize("teacher, words", [
    (42, "teacher_outputs(): expected a mobconv.Model or the path of a .mob file, got a int"),
    ("/nonexistent/t.mob", "teacher_outputs(): /nonexistent/t.mob: no such file"),
])
def test_teacher_outputs_refuses_a_bad_teacher_in_one_line(teacher, words):
    with pytest.raises(ArgumentError) as err:
        distill.teacher_outputs(teacher, _images(2))
    assert str(err.value) == words
