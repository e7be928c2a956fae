"""Train the bundled Caffe digits classifier for real and write it as Caffe files.

    python -m model_zoo.caffe.digits.train   # rewrites deploy.prototxt, digits.caffemodel,
                                             # samples/*.npy, labels.txt, accuracy.json

Data: scikit-learn's bundled 8x8 digits (1797 images, pixel values 0..16),
split 75/25 with a fixed seed. Net (Caffe layers): Power (scale 1/16, so the
model takes raw pixel values) -> InnerProduct 64->48 -> ReLU (in place) ->
InnerProduct 48->10 -> Softmax "prob". Trained with numpy (full-batch Adam on
softmax cross-entropy, 300 steps, seed 0); the held-out accuracy is written to
accuracy.json and checked by tests/test_caffe_digits.py.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .._builder import NetBuilder

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
HIDDEN = 48


def load_split():
    """(x_train, y_train, x_test, y_test); x as (N, 1, 8, 8) float32 raw pixels 0..16."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    cut = int(0.75 * len(x))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


def train(x, y, steps=300, lr=0.01):
    rng = np.random.default_rng(SEED)
    xf = x.reshape(len(x), -1) / 16.0
    params = {
        "w1": rng.standard_normal((HIDDEN, 64)).astype(np.float32) * np.sqrt(2 / 64),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": rng.standard_normal((10, HIDDEN)).astype(np.float32) * np.sqrt(1 / HIDDEN),
        "b2": np.zeros(10, np.float32),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    onehot = np.eye(10, dtype=np.float32)[y]
    for t in range(1, steps + 1):
        h = np.maximum(xf @ params["w1"].T + params["b1"], 0)
        logits = h @ params["w2"].T + params["b2"]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        grads = {"w2": g.T @ h, "b2": g.sum(0)}
        gh = (g @ params["w2"]) * (h > 0)
        grads.update(w1=gh.T @ xf, b1=gh.sum(0))
        for k in params:  # Adam
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
            mh, vh = m[k] / (1 - 0.9 ** t), v[k] / (1 - 0.999 ** t)
            params[k] = (params[k] - lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return params


def predict(params, x):
    xf = x.reshape(len(x), -1) / 16.0
    h = np.maximum(xf @ params["w1"].T + params["b1"], 0)
    return (h @ params["w2"].T + params["b2"]).argmax(1)


def write(params, out_dir=HERE):
    n = NetBuilder("digits")
    n.input("data", (1, 1, 8, 8))
    x = n.layer("Power", "scale", "data", power_param={"scale": 1 / 16})
    x = n.layer("InnerProduct", "ip1", x, None, [params["w1"], params["b1"]],
                inner_product_param={"numOutput": HIDDEN})
    x = n.relu("relu1", x)
    x = n.layer("InnerProduct", "ip2", x, None, [params["w2"], params["b2"]],
                inner_product_param={"numOutput": 10})
    n.softmax("prob", x)
    prototxt, caffemodel = n.save(out_dir, "digits")
    deploy = os.path.join(out_dir, "deploy.prototxt")
    os.replace(prototxt, deploy)
    return deploy, caffemodel


def main() -> int:
    x_train, y_train, x_test, y_test = load_split()
    params = train(x_train, y_train)
    accuracy = float((predict(params, x_test) == y_test).mean())
    write(params)
    samples = os.path.join(HERE, "samples")
    os.makedirs(samples, exist_ok=True)
    for i in range(5):
        np.save(os.path.join(samples, f"digit_{i}_label{y_test[i]}.npy"), x_test[i:i + 1])
    with open(os.path.join(HERE, "labels.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in range(10)))
    with open(os.path.join(HERE, "accuracy.json"), "w") as f:
        json.dump({"held_out_images": int(len(x_test)), "top1_accuracy": round(accuracy, 6),
                   "split": "sklearn digits, seed 0 permutation, last 25% held out"}, f, indent=2)
        f.write("\n")
    print(f"held-out accuracy {accuracy:.4f} on {len(x_test)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
