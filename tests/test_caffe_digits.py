"""The bundled, really trained Caffe digits model (model_zoo/caffe/digits)."""
import json
import os

import numpy as np

from mobconv.cli.main import main as cli
from mobconv.frontends.caffe import load_caffe
from mobconv.passes import optimize
from mobconv.reference.interpreter import run

HERE = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "caffe", "digits")
PROTOTXT = os.path.join(HERE, "deploy.prototxt")
CAFFEMODEL = os.path.join(HERE, "digits.caffemodel")


def test_held_out_accuracy_matches_recorded():
    from model_zoo.caffe.digits.train import load_split

    with open(os.path.join(HERE, "accuracy.json")) as f:
        recorded = json.load(f)
    _, _, x_test, y_test = load_split()
    graph = optimize(load_caffe(PROTOTXT, CAFFEMODEL))
    predictions = [run(graph, {"data": x[None]})["prob"].argmax() for x in x_test]
    accuracy = float(np.mean(np.array(predictions) == y_test))
    assert len(x_test) == recorded["held_out_images"]
    assert round(accuracy, 6) == recorded["top1_accuracy"]
    assert accuracy > 0.95


def test_readme_command_converts_and_predicts(tmp_path, capsys):
    out = tmp_path / "digits.mob"
    assert cli(["caffe2mob", PROTOTXT, CAFFEMODEL, "-o", str(out)]) == 0
    sample = sorted(f for f in os.listdir(os.path.join(HERE, "samples")) if f.endswith(".npy"))[0]
    label = sample.split("label")[1].split(".")[0]
    assert cli(["run", str(out), "--input", os.path.join(HERE, "samples", sample)]) == 0
    text = capsys.readouterr().out
    assert f"row 0: {label} (" in text
