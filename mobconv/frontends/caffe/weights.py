"""Write the seeded random weights of a `--random-weights` conversion as a real
binary caffemodel, so another Caffe implementation (OpenCV's DNN module, Caffe
itself) can run the very same net:

    from mobconv.frontends.caffe.weights import save_random_caffemodel
    save_random_caffemodel("deploy.prototxt", "random.caffemodel", {"data": (1, 3, 224, 224)})
    graph = load_caffe("deploy.prototxt", "random.caffemodel")   # same numbers

CLI: `mobconv caffe2mob deploy.prototxt --random-weights` followed by
`python -m mobconv.frontends.caffe.weights deploy.prototxt out.caffemodel`.
"""
from __future__ import annotations

import argparse
import os
import warnings
from typing import Optional

import numpy as np

from ...output_files import write_atomic
from . import caffe_pb2
from .loader import load_caffe
from .parser import read_net


def write_caffemodel(path: str, name: str, layers: list, inputs=()) -> None:
    """layers: [(layer name, layer type, [float32 arrays])] -> binary NetParameter,
    written by the safe writer (mobconv/output_files.py; `inputs` are never replaced)."""
    net = caffe_pb2.NetParameter(name=name)
    for lname, ltype, arrays in layers:
        layer = net.layer.add(name=lname, type=ltype)
        for array in arrays:
            blob = layer.blobs.add()
            array = np.asarray(array, np.float32)
            blob.shape.dim.extend(array.shape)
            blob.data.extend(array.ravel().tolist())
    write_atomic(path, net.SerializeToString(), inputs)


def save_random_caffemodel(prototxt: str, path: str, input_shapes: Optional[dict] = None) -> dict:
    """Convert with random weights and write the weights drawn to `path`.
    Returns layer name -> arrays."""
    generated = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_caffe(prototxt, input_shapes=input_shapes, random_weights=True, generated_weights=generated)
    net = read_net(os.fspath(prototxt))
    layers = []
    for layer in net.layers:
        if layer.name in generated:
            blobs = generated[layer.name]
            if any(b is None for b in blobs):
                raise ValueError(f"{prototxt}: layer {layer.name!r}: weights are only partly generated")
            layers.append((layer.name, layer.type, blobs))
    write_caffemodel(path, net.name, layers, inputs=[prototxt])
    return generated


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prototxt")
    ap.add_argument("caffemodel", help="output path")
    ap.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...")
    args = ap.parse_args(argv)
    shapes = {}
    for spec in args.input_shape:
        name, _, dims = spec.partition("=")
        shapes[name] = tuple(int(d) for d in dims.split(","))
    save_random_caffemodel(args.prototxt, args.caffemodel, shapes or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
