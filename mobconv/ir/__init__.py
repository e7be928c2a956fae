from .graph import (
    DTYPES,
    Graph,
    Metadata,
    Node,
    Preprocessing,
    QuantParams,
    Signature,
    TensorSpec,
    TestVector,
    Value,
    WeightStorage,
    normalize_dtype,
)
from .check import check_graph
from .infer import infer_shapes

__all__ = [
    "DTYPES", "Graph", "Metadata", "Node", "Preprocessing", "QuantParams", "Signature",
    "TensorSpec", "TestVector", "Value", "WeightStorage", "normalize_dtype", "infer_shapes",
    "check_graph",
]
