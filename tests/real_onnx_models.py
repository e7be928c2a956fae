"""Real third-party ONNX architectures that ship inside the onnx package.

onnx's backend test data has "light" versions of ONNX model-zoo networks
(AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet,
VGG-19, ZFNet-512): the real graphs, with every weight replaced by a
ConstantOfShape filled with one value. One value per tensor makes every channel
identical (the outputs collapse to a uniform softmax), which would hide
mistakes, so `with_random_weights` swaps each ConstantOfShape for a seeded random
initializer of the same shape: He-scaled normals for weights, values in
[0.5, 1.5] for 1-D tensors (biases, BN scale/mean/variance stay positive).
"""
import glob
import os

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light_model_paths() -> list:
    return sorted(glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))


def with_random_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    rng = np.random.default_rng(seed)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]])]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                data = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            else:
                data = rng.uniform(0.5, 1.5, shape)
            graph.initializer.append(numpy_helper.from_array(data.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model
