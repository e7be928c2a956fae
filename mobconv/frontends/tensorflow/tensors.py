"""TensorFlow DataType / TensorProto / TensorShapeProto -> numpy.

Works on the committed `proto/*_pb2` messages and on TensorFlow's own (same
field names). No TensorFlow import.

TensorProto holds its values either as `tensor_content` (raw little-endian
bytes) or in a typed repeated field (`float_val`, `int_val`, ...); a typed
field shorter than the element count repeats its last value (TensorFlow's
rule for splat constants), an empty one means zeros.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConversionError

# DataType enum (types.proto) -> numpy dtype name. Reference types (x + 100) map like x.
_DTYPES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32",
    14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16", 18: "complex128", 19: "float16",
    20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
}
# numpy storage for the quantized / special types TensorProto can hold
_STORAGE = {"qint8": "int8", "quint8": "uint8", "qint32": "int32", "qint16": "int16",
            "quint16": "uint16"}
# which typed field carries each dtype's values
_FIELD = {
    "float32": "float_val", "float64": "double_val", "int32": "int_val", "uint8": "int_val",
    "int16": "int_val", "int8": "int_val", "qint8": "int_val", "quint8": "int_val",
    "qint32": "int_val", "qint16": "int_val", "quint16": "int_val", "uint16": "int_val",
    "int64": "int64_val", "bool": "bool_val", "float16": "half_val", "bfloat16": "half_val",
    "uint32": "uint32_val", "uint64": "uint64_val", "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
}
MAX_ELEMENTS = 1 << 31  # a Const larger than this is refused before allocating


def dtype_name(enum_value: int) -> str:
    """numpy dtype name for a DataType value ("float32"); "dt<N>" when unknown."""
    value = int(enum_value)
    if value > 100:
        value -= 100
    return _DTYPES.get(value, f"dt{int(enum_value)}")


def shape_tuple(shape_proto):
    """TensorShapeProto -> tuple of dims (-1 for unknown), or None for unknown rank."""
    if shape_proto.unknown_rank:
        return None
    return tuple(int(d.size) if d.size >= 0 else -1 for d in shape_proto.dim)


def tensor_to_array(t, where: str) -> np.ndarray:
    """TensorProto -> numpy array; ConversionError starting with `where` when unreadable."""
    dtype = dtype_name(t.dtype)
    shape = shape_tuple(t.tensor_shape)
    if shape is None or any(d < 0 for d in shape):
        raise ConversionError(f"{where}: tensor has no fully known shape")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > MAX_ELEMENTS:
        raise ConversionError(f"{where}: tensor of shape {list(shape)} is too large")
    if dtype == "string":
        values = list(t.string_val)
        if len(values) < count:
            values += [values[-1] if values else b""] * (count - len(values))
        return np.array(values[:count], dtype=object).reshape(shape)
    if dtype in ("resource", "variant") or dtype.startswith("dt"):
        raise ConversionError(f"{where}: tensors of type {dtype} cannot be read")
    if dtype == "bfloat16":
        np_dtype = np.dtype("uint16")  # raw bits; widened to float32 below
    else:
        np_dtype = np.dtype(_STORAGE.get(dtype, dtype))
    if t.tensor_content:
        raw = bytes(t.tensor_content)
        if len(raw) != count * np_dtype.itemsize:
            raise ConversionError(
                f"{where}: tensor_content has {len(raw)} bytes, shape {list(shape)} of "
                f"{dtype} needs {count * np_dtype.itemsize}")
        array = np.frombuffer(raw, dtype=np_dtype.newbyteorder("<")).astype(np_dtype)
    else:
        values = list(getattr(t, _FIELD[dtype]))
        if dtype.startswith("complex"):
            values = [complex(a, b) for a, b in zip(values[0::2], values[1::2])]
        if len(values) > count:
            raise ConversionError(f"{where}: tensor has {len(values)} values for shape {list(shape)}")
        if dtype in ("float16",):
            array = np.asarray(values, dtype=np.uint16).view(np.float16)
        elif dtype == "bfloat16":
            array = np.asarray(values, dtype=np.uint16)
        else:
            array = np.asarray(values, dtype=np_dtype)
        if count and len(values) < count:
            fill = array[-1] if len(values) else np.zeros((), dtype=array.dtype)
            array = np.concatenate([array, np.full(count - len(values), fill, dtype=array.dtype)])
    array = array.reshape(shape)
    if dtype == "bfloat16":  # bfloat16 bits are the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return np.array(array)
