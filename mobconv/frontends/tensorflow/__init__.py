"""TensorFlow frontend: frozen GraphDef (.pb binary, .pbtxt text) and SavedModel -> IR.

    graph = load_tensorflow("frozen.pb", outputs=["logits"])
    graph = load_tensorflow("saved_model_dir", signature="serving_default")

Frozen GraphDefs need no TensorFlow (the message definitions are generated from
TensorFlow's .proto files and committed in proto/); a SavedModel is frozen with
TensorFlow when it is installed. Converters for TensorFlow ops live in ops/ and
register in `registry.TF_OPS`. See docs/tensorflow.md.
"""
from .loader import load_tensorflow  # noqa: F401
from .registry import TF_OPS  # noqa: F401
