#!/usr/bin/env python3
"""Lists weak (COMDAT) symbols that are defined by object files compiled with different
instruction-set flags. The linker keeps one copy of such a symbol for the whole library,
so e.g. an AVX2 kernel may end up calling an inline function or template instance that
was compiled with AVX-512 flags (illegal instruction on an AVX2-only CPU).

    python scripts/check_isa_odr.py build/cp311-cp311-linux_x86_64 [build/aarch64-tests]

The ISA of an object follows runtime/CMakeLists.txt: the most specific ISA name in the
source path; register_* files are compiled without ISA flags. Exit status 1 if any.
Fix: give the function internal linkage (anonymous namespace / static) in the header, or
avoid instantiating the std template in the ISA file."""
import collections
import glob
import subprocess
import sys

TAGS = ("avx512_vnni", "avx_vnni", "avx512", "avx2", "neon_fp16", "neon_dot", "neon")


def isa_of(path: str) -> str:
    rel = path.split("/src/cpu/")[-1] if "/src/cpu/" in path else ""
    if not rel or rel.split("/")[-1].startswith("register_"):
        return "base"
    return next((t for t in TAGS if t in rel), "base")


def main(dirs) -> int:
    found = 0
    for d in dirs:
        defs = collections.defaultdict(set)
        for o in glob.glob(d + "/**/*.o", recursive=True):
            out = subprocess.run(["nm", "--defined-only", o], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "WVu" and not parts[2].startswith("DW.ref."):
                    defs[parts[2]].add((isa_of(o), o.split("/")[-1]))
        for sym, where in sorted(defs.items()):
            isas = {i for i, _ in where}
            if len(isas) > 1 and isas != {"base"}:
                found += 1
                name = subprocess.run(["c++filt", sym], capture_output=True, text=True).stdout.strip()
                files = sorted(f for i, f in where if i != "base")
                nbase = sum(1 for i, _ in where if i == "base")
                print(f"{d}: {name[:160]}\n    ISA objects: {', '.join(files)}" + (f" (+{nbase} baseline)" if nbase else ""))
    print(f"{found} weak symbol(s) shared across instruction sets")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build/cp311-cp311-linux_x86_64"]))
