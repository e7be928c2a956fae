"""The committed generated code (formats/fb/, the C++ header) matches formats/mobconv.fbs."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "formats" / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        "formats/fb/ or runtime/src/core/generated/mobconv_generated.h differs from what "
        "formats/mobconv.fbs generates; run `python formats/generate.py` and commit the result\n"
        + result.stdout + result.stderr)
