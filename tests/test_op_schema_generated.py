"""The C++ op table (runtime/src/core/generated/op_schema_table.inc) is generated from the op
registry by scripts/gen_op_schema.py: the committed file must be what the generator writes
now, so adding an op or changing a default without regenerating fails here (and a row out of
OpType order fails to compile, op_schema.cpp's static_assert)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "scripts" / "gen_op_schema.py"
TABLE = ROOT / "runtime" / "src" / "core" / "generated" / "op_schema_table.inc"


def _check(out=None):
    cmd = [sys.executable, str(GEN), "--check"] + (["--out", str(out)] if out else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_committed_table_is_up_to_date():
    result = _check()
    assert result.returncode == 0, (
        "runtime/src/core/generated/op_schema_table.inc differs from what the op registry "
        "generates; run `python scripts/gen_op_schema.py` and commit the result\n" + result.stderr)


def test_a_stale_table_is_detected(tmp_path):
    """--check compares the whole text: one changed default, a missing row or rows in another
    order are all reported (exit 1, one line naming the file and the command)."""
    text = TABLE.read_text()
    lines = text.splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if line.startswith("MOBRT_OP_ROW(")]
    swapped = list(lines)
    swapped[rows[0]], swapped[rows[1]] = swapped[rows[1]], swapped[rows[0]]
    for stale in (text.replace('"epsilon:f=1e-05"', '"epsilon:f=1e-06"', 1),
                  "".join(line for i, line in enumerate(lines) if i != rows[-1]),
                  "".join(swapped)):
        assert stale != text
        path = tmp_path / "table.inc"
        path.write_text(stale)
        result = _check(path)
        assert result.returncode == 1, result.stderr
        assert "is stale" in result.stderr and "gen_op_schema.py" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    path.write_text(text)
    assert _check(path).returncode == 0


def test_rows_follow_the_enum_and_the_registry():
    """An independent reading of the generated rows: one per OpType value, in enum order, with
    the registry's attribute names in declaration order."""
    import re

    from mobconv.formats.fb.OpType import OpType
    from mobconv.ops import load_all

    reg = load_all()
    enum = sorted((v, k) for k, v in vars(OpType).items() if not k.startswith("_"))
    text = re.sub(r'"\s*\n\s*"', "", TABLE.read_text())  # join the split string literals
    rows = re.findall(r'^MOBRT_OP_ROW\((\w+), (-?\d+), (-?\d+), (-?\d+), (-?\d+), (\d+),\s*"([^"]*)"\)$',
                      text, re.M)
    assert [r[0] for r in rows] == [k for _, k in enum]
    for name, *_, version, attrs in rows:
        assert int(version) == reg[name].version
        assert [tok.split(":")[0] for tok in attrs.split()] == [a.name for a in reg[name].attrs], name
