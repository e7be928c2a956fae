"""The bindings' enum tables (C name/size tables, mobconv/_enums.py, the Java DataType and
Status) are generated from runtime/include/mobrt.h by scripts/gen_binding_enums.py: the
committed files must be what the generator writes now, so a status or dtype added to the
header without regenerating fails here; and the generated tables agree with the library."""
import shutil
import subprocess
import sys
from pathlib import Path

from mobconv import _enums, runtime

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "scripts" / "gen_binding_enums.py"
HEADER = ROOT / "runtime" / "include" / "mobrt.h"


def _gen(*args):
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=120)


def test_committed_tables_are_up_to_date():
    result = _gen("--check")
    assert result.returncode == 0, result.stderr


def test_a_new_status_in_the_header_makes_every_table_stale(tmp_path):
    """A status appended to the header (as the rules say: at the end, commented) changes
    the C, Python and Java outputs; --check names each stale file."""
    root = tmp_path / "root"
    for rel in ("runtime/src/core/generated/binding_enums.inc", "mobconv/_enums.py",
                "android_jni/src/main/java/ai/mobconv/DataType.java",
                "android_jni/src/main/java/ai/mobconv/Status.java"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    text = HEADER.read_text()
    assert "  MOBRT_CANCELLED = 10 " in text
    header = tmp_path / "mobrt.h"
    header.write_text(text.replace("  MOBRT_CANCELLED = 10 ", "  MOBRT_CANCELLED = 10, /* x */\n  MOBRT_TIMEOUT = 11 ", 1))
    assert _gen("--check", "--root", str(root)).returncode == 0  # the copies are current
    result = _gen("--check", "--root", str(root), "--header", str(header))
    assert result.returncode == 1
    stale = [line for line in result.stderr.splitlines() if line.endswith("and commit the result")]
    # DataType.java does not depend on the status enum; the other three do
    assert len(stale) == 3 and not any("DataType.java" in line for line in stale), result.stderr
    assert _gen("--root", str(root), "--header", str(header)).returncode == 0
    assert "TIMEOUT(11," in (root / "android_jni/src/main/java/ai/mobconv/Status.java").read_text()
    assert "11: 'TIMEOUT'" in (root / "mobconv/_enums.py").read_text()


def test_a_dtype_without_a_size_is_refused(tmp_path):
    header = tmp_path / "mobrt.h"
    header.write_text(HEADER.read_text().replace("/* 1 byte, 0 or 1 */", "/* true or false */", 1))
    result = _gen("--check", "--header", str(header))
    assert result.returncode != 0 and "MOBRT_BOOL" in result.stderr and "byte" in result.stderr


def test_tables_agree_with_the_library():
    lib = runtime._load()
    lib.mobrt_dtype_name.restype = __import__("ctypes").c_char_p
    for code, name in _enums.STATUS.items():
        assert lib.mobrt_status_name(code).decode() == "MOBRT_" + name
    for code, name in _enums.DTYPE.items():
        assert lib.mobrt_dtype_name(code).decode() == name
        assert lib.mobrt_dtype_size(code) == _enums.DTYPE_SIZE[code]
    assert lib.mobrt_status_name(max(_enums.STATUS) + 1) == b"MOBRT_UNKNOWN"
    for name, code in _enums.ISA.items():
        assert lib.mobrt_isa_supported(code) in (0, 1), name
