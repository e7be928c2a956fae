"""Caffe frontend: `load_caffe(prototxt, caffemodel=None, input_shapes=None,
random_weights=False) -> Graph`, and `register_layer` for custom layers.

    from mobconv.frontends.caffe import load_caffe, register_layer

    @register_layer("Swish")            # a layer type mobconv does not know
    def swish(ctx):                     # ctx: LayerContext (context.py)
        s = ctx.node("Sigmoid", [ctx.inputs[0]])
        ctx.node("Mul", [ctx.inputs[0], s], ctx.outputs[0])

    graph = load_caffe("deploy.prototxt", "weights.caffemodel")

See docs/caffe.md for the converter contract.
"""
from .context import LayerContext
from .layers import REGISTRY
from .loader import load_caffe


def register_layer(*type_names: str):
    """Decorator registering ``fn(ctx)`` as the converter of Caffe layer type(s).

    Registering a built-in type replaces its converter. The converter reads
    `ctx.layer` (name, type, bottoms, tops, param: the LayerParameter, blobs:
    numpy arrays), `ctx.inputs` (IR value names of the bottoms), and must
    produce `ctx.outputs` (one IR value per top) with `ctx.node(...)`."""
    if not type_names:
        raise TypeError("register_layer() needs at least one Caffe layer type name")
    return REGISTRY.register(*type_names)


def supported_layers() -> list:
    return REGISTRY.supported()


__all__ = ["load_caffe", "register_layer", "supported_layers", "LayerContext", "REGISTRY"]
