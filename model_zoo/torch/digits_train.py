"""Train the two digits classifiers of digits_nets.py for real and ship them as ONNX.

    python -m model_zoo.torch.digits_train            # both nets (about 2-3 min on 2 cores)
    python -m model_zoo.torch.digits_train --net resnet

Writes into model_zoo/onnx/:
- digits_mobilenetv2.onnx, digits_resnet.onnx: opset 13, input "input" [N, 1, 28, 28]
  float32 (pixels in [0, 1]), output "logits" [N, 10]; BatchNormalization nodes are kept in
  inference form (not folded here: the converter folds them).
- digits_heldout.npz: the held-out split, `images` [450, 1, 28, 28] float32, `labels` [450]
  int64. Never used for training or calibration.
- digits_calib/calib_NNN.npy: 200 calibration images [1, 1, 28, 28] float32 (the first 200
  images of the training split, un-augmented), one feed per file for `--calib DIR`.
- digits_accuracy.json: float top-1 of each net on the held-out split, measured with
  onnxruntime on the shipped ONNX file.

Data: scikit-learn's bundled 8x8 digits (1797 real handwritten digits, 0..16), the same
seed-0 75/25 split as model_zoo/caffe/digits. Each image is scaled to [0, 1], upsampled
bilinearly to 24x24 and padded to 28x28 (rounded to multiples of 1/255, so the shipped
float images are exact 8-bit values). Training batches are augmented on the fly with a
random affine map (rotation +-12 deg, scale 0.9..1.1, shift +-2 px) and Gaussian noise
(sigma 0.03). Adam with cosine decay, batch 64, fixed seeds, one CPU thread and
deterministic algorithms, so a rerun rewrites the same weights.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .digits_nets import INPUT_SIZE, NETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "onnx")
SEED = 0
NUM_CALIB = 200
EPOCHS = {"mobilenetv2": 30, "resnet": 20}
BATCH = 64
LR = 3e-3


def load_split():
    """(x_train, y_train, x_test, y_test): x [N, 1, 28, 28] float32 in [0, 1], y int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32)[:, None] / 16.0)
    x = F.interpolate(x, size=(INPUT_SIZE - 4, INPUT_SIZE - 4), mode="bilinear",
                      align_corners=False)
    x = F.pad(x, (2, 2, 2, 2))
    x = (torch.round(x.clamp(0, 1) * 255) / 255).numpy().astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    cut = int(0.75 * len(x))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


def augment(x, gen):
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    scale = 0.9 + torch.rand(n, generator=gen) * 0.2
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.0 / (INPUT_SIZE / 2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out + 0.03 * torch.randn(out.shape, generator=gen)
    return out.clamp(0, 1)


def train(name, x_train, y_train, log=print):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = NETS[name]()
    epochs = EPOCHS[name]
    steps_per_epoch = math.ceil(len(x_train) / BATCH)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / (epochs * steps_per_epoch))))
    x_all, y_all = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            logits = model(augment(x_all[idx], gen))
            loss = F.cross_entropy(logits, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == epochs - 1:
            log(f"  {name} epoch {epoch + 1}/{epochs} loss {total / len(x_all):.4f}")
    model.eval()
    return model


def export(model, path):
    dummy = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    # PRESERVE with the model in eval mode: BatchNormalization exported in inference form
    # and not folded into the convolutions (EVAL mode would run the fold peephole).
    torch.onnx.export(model, (dummy,), path, opset_version=13, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})


def ort_top1(path, images, labels):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": images})[0]
    return float((logits.argmax(1) == labels).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), action="append")
    parser.add_argument("-o", "--out-dir", default=OUT_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = load_split()
    os.makedirs(args.out_dir, exist_ok=True)
    np.savez_compressed(os.path.join(args.out_dir, "digits_heldout.npz"),
                        images=x_test, labels=y_test)
    calib = os.path.join(args.out_dir, "digits_calib")
    os.makedirs(calib, exist_ok=True)
    for i in range(NUM_CALIB):
        np.save(os.path.join(calib, f"calib_{i:03d}.npy"), x_train[i:i + 1])
    acc_path = os.path.join(args.out_dir, "digits_accuracy.json")
    record = {}
    if os.path.exists(acc_path):
        with open(acc_path) as f:
            record = json.load(f)
    record["split"] = ("sklearn digits, seed 0 permutation, first 75% train (first 200 "
                       "un-augmented train images = digits_calib/), last 25% held out")
    record["command"] = "python -m model_zoo.torch.digits_train"
    for name in args.net or sorted(NETS):
        start = time.time()
        model = train(name, x_train, y_train)
        path = os.path.join(args.out_dir, f"digits_{name}.onnx")
        export(model, path)
        accuracy = ort_top1(path, x_test, y_test)
        record[name] = {"onnx": os.path.basename(path), "held_out_images": int(len(x_test)),
                        "top1_accuracy": round(accuracy, 6)}
        print(f"{name}: held-out top-1 {accuracy:.4f} on {len(x_test)} images, "
              f"{os.path.getsize(path)} bytes, trained in {time.time() - start:.0f} s")
    with open(acc_path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
