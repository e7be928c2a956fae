"""TF1-era graphs (tf.compat.v1, frozen with graph_util.convert_variables_to_constants)
against TensorFlow: uint8 placeholder with preprocessing, FusedBatchNormV3, tf.cond
on a constant is_training (Switch/Merge), postprocessing (Softmax, TopKV2); the
graph cut at --inputs/--outputs; a quantization-aware-trained graph (FakeQuant)
that deploys as int8. Builders: tests/tf_models.py.

Metric: max|ours - tf| / max|tf| <= 1e-4 per output (float graphs); the QAT
graph's int8 model within one step of the logits' quantization (8/255).
"""
import numpy as np
import pytest

import mobconv
import tf_models
from mobconv.cli.main import main

RTOL = 1e-4
BACKENDS = ("reference", "runtime")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf1")
    paths = {}
    for name, build in (("classifier", tf_models.tf1_classifier), ("qat", tf_models.tf1_qat)):
        paths[name] = str(root / f"{name}.pb")
        with open(paths[name], "wb") as f:
            f.write(build())
    return paths


def tf_run(path, feeds, fetches):
    with open(path, "rb") as f:
        return tf_models.run_graph_def(f.read(), feeds, fetches)


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} vs TensorFlow's {want.shape}"
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def raw_images(batch):
    return np.random.default_rng(batch).integers(0, 256, (batch, 24, 24, 3), dtype=np.uint8)


def test_tf1_classifier_whole_graph(graphs, tmp_path):
    """uint8 in, logits and top-3 (values, indices) out, through the folded Switch/Merge."""
    mob = tmp_path / "c.mob"
    mobconv.convert(graphs["classifier"], outputs=["logits", "top", "top:1"]).save(str(mob))
    model = mobconv.load(str(mob))
    assert [(s.name, s.dtype, tuple(s.shape)) for s in model.inputs] == [
        ("raw_images", "uint8", ("batch", 24, 24, 3))]
    ops = {n.op for n in model.graph.nodes}
    assert not ops & {"If", "Where", "RandomUniform"}, ops  # the dropout branch is gone
    for batch in (1, 3):
        x = raw_images(batch)
        logits, values, indices = tf_run(graphs["classifier"], {"raw_images": x},
                                         ["logits", "top:0", "top:1"])
        for backend in BACKENDS:
            got = model.run({"raw_images": x}, backend=backend)
            assert rel_err(got["logits"], logits) <= RTOL, (backend, batch)
            assert rel_err(got["top"], values) <= RTOL, (backend, batch)
            np.testing.assert_array_equal(got["top:1"], indices, err_msg=f"{backend} batch {batch}")


def test_tf1_default_outputs_are_the_graph_sinks(graphs):
    """Without outputs: the TopKV2 the graph ends in; not the folded cond's predicate."""
    model = mobconv.convert(graphs["classifier"])
    assert "top" in model.graph.outputs
    assert not any("pred_id" in o or model.graph.values[o].dtype == "bool"
                   for o in model.graph.outputs), model.graph.outputs


def test_tf1_cut_at_preprocessing(graphs, tmp_path, capsys):
    """`tf2mob --inputs 'image[batch,24,24,3]' --outputs logits`: the preprocessing and
    postprocessing are left out; TensorFlow is fed the same tensor."""
    mob = tmp_path / "cut.mob"
    code = main(["tf2mob", graphs["classifier"], "-o", str(mob), "-q",
                 "--inputs", "image[batch,24,24,3]", "--outputs", "logits"])
    assert code == 0, capsys.readouterr().err
    model = mobconv.load(str(mob))
    assert model.graph.inputs == ["image"] and model.graph.outputs == ["logits"]
    assert not {"Cast", "Softmax", "TopK"} & {n.op for n in model.graph.nodes}
    for batch in (1, 3):
        x = np.random.default_rng(batch).uniform(-1, 1, (batch, 24, 24, 3)).astype(np.float32)
        (want,) = tf_run(graphs["classifier"], {"image": x}, ["logits"])
        for backend in BACKENDS:
            got = model.run({"image": x}, backend=backend)["logits"]
            assert rel_err(got, want) <= RTOL, (backend, batch)


def test_tf1_qat_graph_deploys_as_int8(graphs):
    """FakeQuant ranges become the int8 model's quantization: every Conv and the
    dense layer run on int8, and the result is TensorFlow's fake-quantized logits."""
    model = mobconv.convert(graphs["qat"])
    values = model.graph.values
    int8 = [n.op for n in model.graph.nodes
            if n.op in ("Conv", "Gemm", "MatMul") and values[n.outputs[0]].dtype == "int8"]
    assert sorted(int8) == ["Conv", "Conv", "Conv", "Gemm"], [
        (n.op, values[n.outputs[0]].dtype) for n in model.graph.nodes]
    step = 8.0 / 255
    for batch in (1, 3):
        x = np.random.default_rng(batch).uniform(-1.2, 1.2, (batch, 16, 16, 3)).astype(np.float32)
        (want,) = tf_run(graphs["qat"], {"input": x}, ["logits"])
        for backend in BACKENDS:
            got = model.run({"input": x}, backend=backend)["logits"]
            err = float(np.abs(got - want).max())
            assert err <= step * 1.001, f"{backend} batch {batch}: {err / step:.2f} steps from TF"
