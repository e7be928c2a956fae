"""A small graph builder over onnx.helper shared by the ONNX recipes.

Weights are drawn from one seeded numpy Generator, He-scaled so activations
stay O(1) through deep stacks (important when comparing runtimes in float32).
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_OPSET = 13


class NetBuilder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.initializers: list = []
        self._names: dict = {}

    # ---- naming and weights ------------------------------------------------
    def name(self, base: str) -> str:
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def weight(self, name: str, array) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs, base: str, n_out: int = 1, **attrs):
        name = self.name(base)
        outs = [name] if n_out == 1 else [f"{name}:{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- layers ------------------------------------------------------------
    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=True, base="conv"):
        pad = k // 2 if pad is None else pad
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        name = self.name(base)
        inputs = [x, self.weight(f"{name}.weight", w)]
        if bias:
            inputs.append(self.weight(f"{name}.bias", self.rng.normal(0, 0.05, cout).astype(np.float32)))
        self.nodes.append(helper.make_node(
            "Conv", inputs, [name], name=name, kernel_shape=[k, k], strides=[stride, stride],
            pads=[pad] * 4, group=group, dilations=[1, 1]))
        return name

    def bn(self, x, c, base="bn"):
        name = self.name(base)
        r = self.rng
        params = [
            r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c), r.uniform(0.5, 1.5, c)
        ]
        ins = [x] + [self.weight(f"{name}.{p}", a.astype(np.float32))
                     for p, a in zip(("scale", "bias", "mean", "var"), params)]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=1e-5))
        return name

    def relu(self, x, base="relu"):
        return self.node("Relu", [x], base)

    def relu6(self, x, base="relu6"):
        lo = self.weight(self.name("relu6.min"), np.array(0.0, np.float32))
        hi = self.weight(self.name("relu6.max"), np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi], base)

    def add(self, a, b, base="add"):
        return self.node("Add", [a, b], base)

    def max_pool(self, x, k, stride, pad=0, ceil_mode=0, base="maxpool"):
        return self.node("MaxPool", [x], base, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, ceil_mode=ceil_mode)

    def global_avg_pool(self, x, base="gap"):
        return self.node("GlobalAveragePool", [x], base)

    def flatten(self, x, base="flatten"):
        return self.node("Flatten", [x], base, axis=1)

    def gemm(self, x, cin, cout, base="fc"):
        name = self.name(base)
        w = self.rng.normal(0, np.sqrt(1.0 / cin), (cout, cin)).astype(np.float32)
        b = self.rng.normal(0, 0.05, cout).astype(np.float32)
        self.nodes.append(helper.make_node(
            "Gemm", [x, self.weight(f"{name}.weight", w), self.weight(f"{name}.bias", b)], [name],
            name=name, transB=1, alpha=1.0, beta=1.0))
        return name

    # ---- model -------------------------------------------------------------
    def model(self, graph_name, x_name, x_shape, y_name, y_shape, opset=DEFAULT_OPSET):
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, list(x_shape))],
            [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, list(y_shape))],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph, producer_name="mobconv.model_zoo", opset_imports=[helper.make_opsetid("", opset)]
        )
        model.ir_version = min(model.ir_version, 8)
        onnx.checker.check_model(model)
        return model

    def rename_output(self, last: str, y_name: str) -> None:
        """Make the last node write the graph output name."""
        node = self.nodes[-1]
        assert node.output[0] == last
        node.output[0] = y_name


def cli(build, default_out: str, doc: str, extra_args=None) -> None:
    """`python -m model_zoo.onnx.<recipe> -o path [options]`."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("-o", "--output", default=default_out, help="where to write the .onnx file")
    parser.add_argument("--seed", type=int, default=0)
    for args, kwargs in extra_args or ():
        parser.add_argument(*args, **kwargs)
    ns = vars(parser.parse_args())
    out = ns.pop("output")
    model = build(**ns)
    onnx.save(model, out)
    print(f"wrote {out} ({model.graph.name}, {len(model.graph.node)} nodes)")
