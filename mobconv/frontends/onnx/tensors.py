"""ONNX tensors -> numpy, checked first: numpy_helper trusts that a TensorProto's
dims, data type and data agree, and raises numpy errors (or allocates whatever
the dims say) when they do not."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import ConversionError, MobconvError
from ...ir import normalize_dtype
from ...limits import check_tensor


def elem_dtype(elem_type: int, what: str) -> str:
    """The IR dtype of an ONNX element type; ConversionError (starting with `what`)
    for types mobconv does not support or does not know."""
    if elem_type == onnx.TensorProto.BFLOAT16:
        name = "bfloat16"
    else:
        try:
            name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
        except Exception:  # noqa: BLE001 - onnx raises KeyError/ValueError/TypeError by version
            try:
                name = onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "undefined"
            except ValueError:
                name = f"{elem_type} (not an ONNX data type)"
    try:
        return normalize_dtype(name)
    except MobconvError:
        raise ConversionError(f"{what}: dtype {name} is not supported by mobconv") from None


# TensorProto field holding the values of each data type, when not in raw_data.
_DATA_FIELDS = {
    onnx.TensorProto.FLOAT: "float_data", onnx.TensorProto.DOUBLE: "double_data",
    onnx.TensorProto.INT64: "int64_data", onnx.TensorProto.UINT64: "uint64_data",
    onnx.TensorProto.UINT32: "uint64_data",
}


def tensor_to_array(t, what: str) -> np.ndarray:
    """TensorProto -> numpy, after checking what numpy_helper trusts: a supported
    dtype, non-negative dims within the runtime's limits, and as many values
    (raw_data bytes or typed values) as the dims say."""
    dtype = elem_dtype(t.data_type, what)
    dims = tuple(int(d) for d in t.dims)
    try:
        check_tensor(dims, dtype, what)
    except MobconvError as exc:
        raise ConversionError(str(exc)) from None
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raise ConversionError(f"{what}: external data was not loaded")
    if t.HasField("raw_data"):
        want = count * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        got = len(t.raw_data)
        unit = "bytes"
    else:
        field = _DATA_FIELDS.get(t.data_type, "int32_data")
        got, want, unit = len(getattr(t, field)), count, f"values in {field}"
    if got != want:
        raise ConversionError(f"{what}: dims {list(dims)} need {want} {unit}, the tensor has {got}")
    try:
        return np.array(numpy_helper.to_array(t))
    except Exception as exc:  # noqa: BLE001 - onnx's decoder on a tensor that passed the checks
        raise ConversionError(f"{what}: cannot decode the tensor data ({exc})") from None


