"""IR dtype names <-> the schema's `DType` enum, and how each is stored.

Every tensor's bytes are little-endian, C order. `bfloat16` has no numpy dtype
in the IR: a Value of dtype "bfloat16" holds a uint16 array of the raw bits
(the top half of the float32 bit pattern). The writer also accepts an
`ml_dtypes.bfloat16` array and stores its bits; the reader always returns uint16.
"""
import numpy as np

from .fb.DType import DType

# IR dtype name -> (DType enum value, numpy storage dtype, little-endian)
_TABLE = {
    "float32": (DType.FLOAT32, np.dtype("<f4")),
    "float16": (DType.FLOAT16, np.dtype("<f2")),
    "bfloat16": (DType.BFLOAT16, np.dtype("<u2")),
    "int8": (DType.INT8, np.dtype("i1")),
    "uint8": (DType.UINT8, np.dtype("u1")),
    "int16": (DType.INT16, np.dtype("<i2")),
    "int32": (DType.INT32, np.dtype("<i4")),
    "int64": (DType.INT64, np.dtype("<i8")),
    "bool": (DType.BOOL, np.dtype("?")),
}
_BY_ENUM = {code: name for name, (code, _) in _TABLE.items()}


def to_enum(name: str) -> int:
    """DType enum value of IR dtype `name` (KeyError if the schema has none)."""
    return _TABLE[name][0]


def from_enum(code: int) -> str:
    """IR dtype name of DType enum value `code` (KeyError if unknown)."""
    return _BY_ENUM[code]


def storage_dtype(name: str) -> np.dtype:
    """Little-endian numpy dtype whose bytes are what the file stores for `name`."""
    return _TABLE[name][1]


def itemsize(name: str) -> int:
    return _TABLE[name][1].itemsize


def known_names() -> tuple:
    return tuple(_TABLE)


def array_dtype_name(array: np.ndarray) -> str:
    """IR dtype name of a numpy array (ml_dtypes bfloat16 -> "bfloat16")."""
    return array.dtype.name


def as_storage(array: np.ndarray, name: str) -> np.ndarray:
    """`array` as a C-contiguous, little-endian array of `name`'s storage dtype.

    Converts values when the array's dtype differs from `name` (e.g. float64
    data for a float32 tensor); a bfloat16 tensor takes uint16 bits or an
    ml_dtypes bfloat16 array (viewed as its bits).
    """
    array = np.asarray(array)
    store = storage_dtype(name)
    if name == "bfloat16":
        if array.dtype.name == "bfloat16":
            array = array.view(np.uint16)
        elif array.dtype.kind == "f":
            # Round-to-nearest-even float32 -> bfloat16 bits.
            bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
            array = bits.astype(np.uint16)
    if array.dtype != store:
        array = array.astype(store)
    return np.ascontiguousarray(array)


# ---- packed palette indices (format 1.1, CompressedData PALETTE) ----


def pack_indices(indices: np.ndarray, bits: int) -> np.ndarray:
    """uint8 indices < 2^bits -> ceil(n * bits / 8) bytes, index i at bits [i*bits, i*bits +
    bits), LSB first; unused trailing bits 0."""
    per_byte = 8 // bits
    n = len(indices)
    padded = np.zeros(-(-n // per_byte) * per_byte, np.uint8)
    padded[:n] = indices
    groups = padded.reshape(-1, per_byte)
    packed = np.zeros(len(groups), np.uint8)
    for j in range(per_byte):
        packed |= groups[:, j] << np.uint8(j * bits)
    return packed


def unpack_indices(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The inverse of pack_indices: the first `n` indices as uint8."""
    if bits == 8:
        return packed[:n]
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    return ((packed[:, None] >> shifts) & np.uint8((1 << bits) - 1)).reshape(-1)[:n]
