"""Compressed constants (rules C1-C7): the Python reader and the C++ runtime's loader
accept exactly the same files and refuse the others with the same message.

Corpus: the hand-built file of each rule (tests/test_format_compressed.py CASES and the
special cases there: trailing bits, huge dims, numel 0, buffer and compressed both set,
compressed graph inputs / operator outputs, symbolic shapes), the writer's files for
every dtype x storage x shape, and seeded mutations of the compressed fields, shapes and
parts of a model holding four compressed tensors.
"""
import math

import numpy as np
import pytest

from mobconv.formats import to_bytes
from mobconv.ir.graph import WeightStorage

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

import test_format_compressed as fc  # noqa: E402
from test_format_rules_differential import cpp_verdict, python_verdict  # noqa: E402


def agree(blob: bytes):
    """Both readers' verdicts, asserted equal (None = accepted; the message without the
    file name otherwise)."""
    p, c = python_verdict(blob), cpp_verdict(blob)
    p = None if p is None else p.split(": ", 1)[1]
    c = None if c is None else c.split(": ", 1)[1]
    assert p == c, f"Python reader: {p}\nC++ loader:    {c}"
    return p


@pytest.mark.parametrize("case", fc.CASES, ids=[c[0] for c in fc.CASES])
def test_rule_files(case):
    _, kwargs, message = case
    with fc.crafted(**kwargs):
        assert agree(to_bytes(fc.base_graph())) == message


def special_files():
    g = fc.base_graph(shape=(3, 5))
    for bits, last in ((1, 0x80), (2, 0x40), (4, 0x10)):
        n = (15 * bits + 7) // 8
        with fc.crafted(parts=fc.palette_parts([0] * (n - 1) + [last], np.ones(2, np.float32),
                                               bits)):
            yield f"index tail {bits}", to_bytes(g)
    with fc.crafted(parts=fc.sparse_parts([1, 0x80], [1.0, 2.0])):
        yield "mask tail", to_bytes(g)
    with fc.crafted(parts=fc.sparse_parts([1, 0x40], [1.0, 2.0])):
        yield "mask last element", to_bytes(g)
    with fc.crafted(tensor_buffer=2):
        yield "T6 before C1", to_bytes(fc.base_graph())
    for storage in (WeightStorage("sparse"), WeightStorage("palette", 4)):
        g = fc.base_graph(storage)
        g.values["w"].shape = (2**40, 2**8)
        with fc.crafted(no_checks=True):
            yield f"huge {storage.kind}", to_bytes(g)
    g = fc.base_graph(shape=(0, 6))
    with fc.crafted(parts=(1, [np.zeros(0, np.float32), np.zeros(0, np.uint8)], 0)):
        yield "numel 0 sparse", to_bytes(g)
    for k in (1, 0):
        with fc.crafted(parts=fc.palette_parts([], np.ones(k, np.float32), 2)):
            yield f"numel 0 palette K={k}", to_bytes(g)
    for name, shape in (("x", (1, 4)), ("y", (2, 6))):
        g = fc.base_graph()
        g.values[name].shape = shape
        g.values[name].data = np.zeros(shape, np.float32)
        g.values[name].storage = WeightStorage("palette", 1)
        yield f"compressed {name}", to_bytes(g)
    g = fc.base_graph()
    with fc.crafted(no_checks=True):
        g.values["w"].shape = ("K", 6)
        yield "symbolic", to_bytes(g)
    for n in (2, 10):  # rule C7: under (n = 2) and over (n = 10) 64 x the file size
        yield f"decode budget {n}", fc.amplifying_file(n)


def test_special_files():
    verdicts = {name: agree(blob) for name, blob in special_files()}
    assert verdicts["numel 0 sparse"] is None and verdicts["numel 0 palette K=1"] is None
    assert verdicts["mask last element"] is None and verdicts["decode budget 2"] is None
    assert "64 times the file size" in verdicts["decode budget 10"]
    assert sum(v is not None for v in verdicts.values()) == len(verdicts) - 4


def test_writer_files_every_dtype_and_storage():
    rng = np.random.default_rng(11)
    for dtype in fc.DTYPES:
        for bits in (0, 1, 2, 4, 8):
            for shape in fc.SHAPES:
                k = min(1 << bits, 5) if bits else 4
                values = fc.pool(dtype, k, rng, zero=True)
                data = values[rng.integers(0, len(values), math.prod(shape))].reshape(shape)
                hint = WeightStorage("palette", bits) if bits else WeightStorage("sparse")
                assert agree(to_bytes(fc.one_constant_graph(data, dtype, hint))) is None


def test_mutations_of_compressed_fields_and_parts():
    seed = fc.fuzz_seed_model()
    assert agree(seed) is None
    positions = fc.interesting_positions(seed)
    refused = 0
    for blob in fc.mutations(seed, positions, np.random.default_rng(12), 400):
        refused += agree(blob) is not None
    assert 100 < refused < 400
