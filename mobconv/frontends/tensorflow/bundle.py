"""Reading a TensorFlow checkpoint (TensorBundle: variables.index + variables.data-*)
without TensorFlow.

variables.index is a LevelDB-format table (an SSTable): sorted keys (tensor
names) -> BundleEntryProto (dtype, shape, which data shard, offset, size); the
empty key holds the BundleHeaderProto (number of shards). Layout of the table:

- footer (last 48 bytes): the metaindex and index block handles (varint offset
  and size each), zero padding, the magic number 0xdb4775248b80fb57;
- a block: entries (varint shared key prefix length, varint unshared length,
  varint value length, the unshared key bytes, the value), then the restart
  offsets (uint32 each) and their count (uint32); every block is followed by a
  5-byte trailer: compression type (0: none, what TensorFlow writes) and a CRC;
- the index block maps the last key of each data block to that block's handle.

Tensor data is raw little-endian bytes in variables.data-SSSSS-of-NNNNN at
(offset, size); a string tensor is its elements' lengths (varint64), a 4-byte
checksum of those, then the bytes.
"""
from __future__ import annotations

import os
import struct

import numpy as np
from google.protobuf.message import DecodeError

from ...errors import ConversionError
from .proto import tensor_bundle_pb2
from .tensors import dtype_name

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48


def _varint(data: bytes, pos: int):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


class _Table:
    def __init__(self, data: bytes):
        self.data = data
        if len(data) < _FOOTER:
            raise ValueError("too short for a table")
        footer = data[-_FOOTER:]
        if struct.unpack("<Q", footer[-8:])[0] != _MAGIC:
            raise ValueError("bad table magic number")
        _, pos = _varint(footer, 0)
        _, pos = _varint(footer, pos)  # metaindex handle (unused)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        self.index = self._block(index_offset, index_size)

    def _block(self, offset: int, size: int) -> bytes:
        if offset + size + 5 > len(self.data):
            raise ValueError("block beyond the end of the table")
        raw = self.data[offset:offset + size]
        kind = self.data[offset + size]
        if kind != 0:  # TensorFlow writes checkpoint indexes uncompressed
            raise ValueError(f"compressed table blocks (type {kind}) are not supported")
        return raw

    @staticmethod
    def _entries(block: bytes):
        if len(block) < 4:
            raise ValueError("block too short")
        restarts = struct.unpack("<I", block[-4:])[0]
        end = len(block) - 4 - 4 * restarts
        if end < 0:
            raise ValueError("bad restart count")
        pos, key = 0, b""
        while pos < end:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            length, pos = _varint(block, pos)
            if shared > len(key) or pos + unshared + length > end:
                raise ValueError("bad block entry")
            key = key[:shared] + block[pos:pos + unshared]
            pos += unshared
            yield key, block[pos:pos + length]
            pos += length

    def items(self):
        for _, handle in self._entries(self.index):
            offset, pos = _varint(handle, 0)
            size, _ = _varint(handle, pos)
            yield from self._entries(self._block(offset, size))


class Bundle:
    """The tensors of a checkpoint `prefix` (".../variables/variables"), read on demand."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        index = prefix + ".index"
        try:
            with open(index, "rb") as f:
                table = _Table(f.read())
            self.entries = {}
            header = None
            for key, value in table.items():
                if key == b"":
                    header = tensor_bundle_pb2.BundleHeaderProto.FromString(value)
                else:
                    self.entries[key.decode()] = tensor_bundle_pb2.BundleEntryProto.FromString(value)
        except OSError as exc:
            raise ConversionError(f"{index}: cannot read the checkpoint index ({exc.strerror})") from None
        except (ValueError, DecodeError, RuntimeError, struct.error) as exc:  # UnicodeDecodeError too
            raise ConversionError(f"{index}: not a TensorFlow checkpoint index ({exc})") from None
        if header is None:
            raise ConversionError(f"{index}: the checkpoint index has no header")
        if header.endianness != 0:
            raise ConversionError(f"{index}: big-endian checkpoints are not supported")
        self.num_shards = header.num_shards

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def read(self, key: str) -> np.ndarray:
        where = f"{self.prefix}: tensor {key!r}"
        entry = self.entries.get(key)
        if entry is None:
            raise ConversionError(f"{where} is not in the checkpoint index")
        if entry.slices:
            raise ConversionError(f"{where} is saved in slices, which is not supported")
        dtype = dtype_name(entry.dtype)
        shape = tuple(int(d.size) for d in entry.shape.dim)
        path = f"{self.prefix}.data-{entry.shard_id:05d}-of-{self.num_shards:05d}"
        try:
            with open(path, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as exc:
            raise ConversionError(f"{path}: cannot read the checkpoint data ({exc.strerror})") from None
        if len(raw) != entry.size:
            raise ConversionError(f"{path}: truncated (tensor {key!r} needs bytes "
                                  f"{entry.offset}..{entry.offset + entry.size})")
        if any(d < 0 for d in shape):
            raise ConversionError(f"{where}: shape {list(shape)} has a negative dim")
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if dtype == "string":
            return _strings(raw, count, where).reshape(shape)
        try:
            stored = np.dtype("<u2" if dtype == "bfloat16" else dtype).newbyteorder("<")
        except TypeError:
            raise ConversionError(f"{where} is of type {dtype}, which cannot be read") from None
        if len(raw) != count * stored.itemsize:
            raise ConversionError(f"{where}: {entry.size} bytes do not hold shape {list(shape)} of {dtype}")
        array = np.frombuffer(raw, stored)
        if dtype == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        if array.size != count:
            raise ConversionError(f"{where}: {entry.size} bytes do not hold shape {list(shape)} of {dtype}")
        return array.astype(array.dtype.newbyteorder("=")).reshape(shape)


def _strings(raw: bytes, count: int, where: str) -> np.ndarray:
    lengths, pos = [], 0
    try:
        for _ in range(count):
            n, pos = _varint(raw, pos)
            lengths.append(n)
    except ValueError:
        raise ConversionError(f"{where}: malformed string tensor") from None
    pos += 4  # checksum of the lengths
    values = []
    for n in lengths:
        values.append(raw[pos:pos + n])
        pos += n
    if pos > len(raw):
        raise ConversionError(f"{where}: malformed string tensor")
    return np.array(values, dtype=object)


def checkpoint_prefix(directory: str) -> str:
    return os.path.join(directory, "variables", "variables")
