"""Build the LiteRT side of the benchmarks: the same architectures as bench_models.py's
mobilenet_v2 (MobileNetV2 1.0, 224x224) and resnet50 (ResNet-50 v1) in Keras
(keras.applications, weights=None: seeded random weights, NOT mobconv's weights: the
architecture is the same, the numbers are not), converted by TensorFlow's TFLite converter
into an fp32 .tflite and a full-integer int8 one (int8 weights per channel and int8
activations, float input/output, calibrated on `--calib-samples` inputs of
np.random.default_rng(1), standard normal: bench_int8.py's calibration set, NHWC).

    python benchmarks/make_tflite.py --out build/bench_models mobilenet_v2 resnet50

Needs TensorFlow (`pip install tensorflow-cpu`), which is not a mobconv dependency: run it
with any Python that has it; bench_models.py does so by itself when the interpreter it runs
under (or $MOBCONV_TF_PYTHON) can import tensorflow. Writes <out>/<name>.tflite and
<out>/<name>.int8.tflite (existing files are kept unless --force).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ARCHS = ("mobilenet_v2", "resnet50")


def keras_model(name: str):
    import keras
    keras.utils.set_random_seed(0)
    if name == "mobilenet_v2":
        return keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None,
                                              classifier_activation=None)
    if name == "resnet50":
        return keras.applications.ResNet50(input_shape=(224, 224, 3), weights=None,
                                           classifier_activation=None)
    raise SystemExit(f"make_tflite: unknown model {name!r} (one of {', '.join(ARCHS)})")


def convert(model, int8: bool, samples: int) -> bytes:
    import numpy as np
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shape = (1,) + tuple(model.input_shape[1:])

        def representative():
            rng = np.random.default_rng(1)
            for _ in range(samples):
                yield [rng.standard_normal(shape).astype(np.float32)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", choices=ARCHS)
    ap.add_argument("--out", required=True)
    ap.add_argument("--calib-samples", type=int, default=8)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        targets = {False: out / f"{name}.tflite", True: out / f"{name}.int8.tflite"}
        if not args.force and all(p.exists() for p in targets.values()):
            continue
        model = keras_model(name)
        for int8, path in targets.items():
            if args.force or not path.exists():
                path.write_bytes(convert(model, int8, args.calib_samples))
                print(f"{name}: wrote {path} (Keras {name}, weights=None, seed 0"
                      f"{', full int8' if int8 else ', fp32'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
