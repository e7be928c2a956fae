"""Small float models and their int8 forms built by hand with the IR (Value.quant),
for the debugger and mixed-precision tests: no dependence on the quantizer itself.

`tiny_cnn()` is x -> Conv+Relu -> depthwise Conv -> GlobalAveragePool -> Flatten -> Gemm -> y.
`lower_by_hand(float_model, samples, exclude=(), sabotage=None)` quantizes it as the
pipeline's lowering would: asymmetric per-tensor int8 activations from min/max over
`samples`, per-output-channel symmetric int8 weights, int32 biases, QuantizeLinear at
the input and DequantizeLinear at the output; layers in `exclude` stay float between a
DequantizeLinear and a QuantizeLinear. `sabotage` maps a tensor name to a factor that
shrinks its activation scale (a deliberately broken quantization parameter).
"""
from __future__ import annotations

import numpy as np

from mobconv.api import Model
from mobconv.ir.graph import Graph, QuantParams
from mobconv.ops import quant_math as qm
from mobconv.reference.interpreter import run


def tiny_cnn(seed: int = 0, channels: int = 8, wide_channel: bool = False) -> Model:
    rng = np.random.default_rng(seed)
    g = Graph("tiny")
    g.add_input("x", "float32", (1, 3, 8, 8))
    w1 = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.3
    if wide_channel:
        w1[0] *= 50.0
    g.add_constant("w1", w1)
    g.add_constant("b1", rng.standard_normal(channels).astype(np.float32) * 0.1)
    g.add_constant("w2", rng.standard_normal((channels, 1, 3, 3)).astype(np.float32) * 0.4)
    g.add_constant("b2", rng.standard_normal(channels).astype(np.float32) * 0.1)
    g.add_constant("w3", rng.standard_normal((4, channels)).astype(np.float32) * 0.5)
    g.add_constant("b3", rng.standard_normal(4).astype(np.float32) * 0.1)
    g.add_node("Conv", ["x", "w1", "b1"], ["t1"], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                                      activation="Relu"), name="conv1")
    g.add_node("Conv", ["t1", "w2", "b2"], ["t2"], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                                       group=channels), name="dwconv")
    g.add_node("GlobalAveragePool", ["t2"], ["t3"], name="gap")
    g.add_node("Flatten", ["t3"], ["t4"], dict(axis=1), name="flatten")
    g.add_node("Gemm", ["t4", "w3", "b3"], ["y"], dict(transB=1), name="fc")
    g.outputs = ["y"]
    for name in ("t1", "t2", "t3", "t4", "y"):
        g.values[name].dtype = "float32"
    return Model(g)


def samples(n: int, seed: int = 1, shape=(1, 3, 8, 8)) -> list:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def minmax_params(arrays) -> QuantParams:
    lo = min(0.0, min(float(a.min()) for a in arrays))
    hi = max(0.0, max(float(a.max()) for a in arrays))
    scale = np.float32(max(hi - lo, 1e-8) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QuantParams([float(scale)], [zp], None)


def _weight_params(w, axis):
    m = np.moveaxis(np.abs(w), axis, 0).reshape(w.shape[axis], -1).max(axis=1)
    scales = (np.maximum(m, 1e-12) / 127.0).astype(np.float32)
    qp = QuantParams([float(s) for s in scales], [0] * len(scales), axis)
    return qp, qm.quantize_linear(w, qp, "int8")


def lower_by_hand(model: Model, data, exclude=(), sabotage=None) -> Model:
    fg = model.graph
    envs = [run(fg, feeds, keep_intermediates=True) for feeds in data]
    acts = ["x"] + [n.outputs[0] for n in fg.nodes]
    params = {t: minmax_params([e[t] for e in envs]) for t in acts}
    for t, factor in (sabotage or {}).items():
        p = params[t]
        params[t] = QuantParams([float(np.float32(p.scales[0] * factor))], p.zero_points, None)
    for i, node in enumerate(fg.nodes):  # pass-through ops keep their input's parameters
        if node.op in ("GlobalAveragePool", "Flatten"):
            params[node.outputs[0]] = params[node.inputs[0]]
    g = Graph("tiny-int8")
    g.add_input("x", "float32", (1, 3, 8, 8))
    g.outputs = ["y"]

    def const(name, data, quant=None):
        v = g.add_constant(name, data)
        v.quant = quant
        return name

    def qtensor(t):
        return g.add_value(t, "int8", None, quant=params[t])

    def quantize(src, t, p):  # float src -> int8 tensor t with parameters p
        params[t] = p
        const(f"{t}/scale", np.float32(p.scales[0]))
        const(f"{t}/zero_point", np.int8(p.zero_points[0]))
        g.add_node("QuantizeLinear", [src, f"{t}/scale", f"{t}/zero_point"], [t], name=f"{t}/Quantize")
        qtensor(t)

    def dequantize(t, out):  # int8 tensor t -> float out
        p = params[t]
        const(f"{t}/dq_scale", np.float32(p.scales[0]))
        const(f"{t}/dq_zero_point", np.int8(p.zero_points[0]))
        g.add_node("DequantizeLinear", [t, f"{t}/dq_scale", f"{t}/dq_zero_point"], [out],
                   name=f"{out}/Dequantize")
        g.values[out].dtype = "float32"

    quantize("x", "x/q", params["x"])
    int8_name = {"x": "x/q"}
    float_name = {"x": "x"}
    for node in fg.nodes:
        out = node.outputs[0]
        src = node.inputs[0]
        if node.name in exclude:
            if src not in float_name:
                dequantize(int8_name[src], f"{src}/dq")
                float_name[src] = f"{src}/dq"
            ins = [float_name[src]] + [const(n, fg.values[n].data) for n in node.inputs[1:]]
            g.add_node(node.op, ins, [out], node.attrs, name=node.name)
            g.values[out].dtype = "float32"
            float_name[out] = out
            continue
        if src not in int8_name:
            quantize(float_name[src], f"{src}/q", params[src])
            int8_name[src] = f"{src}/q"
        qname = "y/q" if out == "y" else out
        params[qname] = params[out]
        ins = [int8_name[src]]
        if node.op in ("Conv", "Gemm"):
            w = fg.values[node.inputs[1]].data
            wq, wint = _weight_params(w, 0)
            ins.append(const(node.inputs[1] + "/q", wint, wq))
            b = fg.values[node.inputs[2]].data
            s_in = params[int8_name[src]].scales[0]
            bscale = [float(np.float32(s_in) * np.float32(s)) for s in wq.scales]
            ins.append(const(node.inputs[2] + "/q", qm.quantize_bias(b, s_in, wq.scales),
                             QuantParams(bscale, [0] * len(bscale), 0)))
        g.add_node(node.op, ins, [qname], node.attrs, name=node.name)
        qtensor(qname)
        int8_name[out] = qname
    if "y" not in float_name:
        dequantize("y/q", "y")
    return Model(g)
