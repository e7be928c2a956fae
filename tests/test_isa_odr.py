"""No weak (COMDAT) symbol of the runtime is compiled with ISA flags (scripts/check_isa_odr.py).

The linker keeps one copy of an inline function or template instance (std::vector<int>::
_M_fill_assign, a ref:: helper) for the whole library: if an AVX-512, dotprod or fp16 file
defines it, baseline or AVX2 code may run that copy and die of SIGILL on a CPU without those
instructions. So the ISA-flagged files (runtime/CMakeLists.txt: the file name decides the
flags) hold only kernels with internal linkage; the glue lives in files without flags.
Checked on the objects of the installed x86 build (pyproject's build-dir, build/<wheel tag>,
verified to be the build of the installed libmobrt.so) and of the aarch64 build
(build/aarch64-tests, built by the mobrt_run_aarch64 fixture). Before the fix this found
std::vector<int>::_M_fill_assign in q8_dynamic_avx2 and q8_dynamic_avx512_vnni, the same in
q8_dynamic_neon / q8_dynamic_neon_dot, and ref::make_window, ref::shape_str and std::vector
members in f16_conv_neon_fp16 that baseline objects also define."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mobconv import runtime
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_isa_odr", ROOT / "scripts" / "check_isa_odr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _exported(lib: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def _installed_build_dir() -> Path:
    """build/<wheel tag> (pyproject: build-dir), checked against the installed library."""
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    build = ROOT / "build" / f"{tag}-{tag}-{plat}"
    lib = build / "runtime" / "libmobrt.so"
    if not lib.exists():
        pytest.fail(f"{lib} not found: the installed runtime was not built in its pip build dir; rebuild with "
                    f"`pip install --no-build-isolation --no-deps -e .`")
    installed = Path(runtime.library_path())
    assert _exported(lib) == _exported(installed), f"{build} is not the build of the installed {installed}"
    return build


def _assert_no_hazard(build: Path) -> None:
    check = _checker()
    objs = check.object_isas(str(build))
    assert any(objs.values()), f"{build}: no object compiled with ISA flags found (is it a runtime build dir?)"
    found = check.find_hazards(str(build))
    assert not found, (f"{len(found)} weak symbol(s) defined by ISA-flagged objects (one copy is kept for the "
                       "whole library, so other code may run it with the wrong instructions):\n"
                       + "\n".join(check.describe(str(build), *h) for h in found))


def test_x86_runtime_objects_have_no_cross_isa_weak_symbols():
    _assert_no_hazard(_installed_build_dir())


def test_aarch64_runtime_objects_have_no_cross_isa_weak_symbols(mobrt_run_aarch64):
    _assert_no_hazard(mobrt_run_aarch64.parent)


def test_checker_finds_a_weak_symbol_shared_by_two_isas(tmp_path):
    """The checker itself: an inline function and a std::vector member instantiated by an
    AVX2 and an AVX-512 file (path rule, no build.ninja) are reported with both objects,
    one used only by a single ISA file as latent, a static one not at all."""
    src = tmp_path / "src" / "cpu" / "demo"
    src.mkdir(parents=True)
    head = ("#include <vector>\ninline int shared_helper(int x) { return x * 3; }\n"
            "static int private_helper(int x) { return x + 1; }\n")
    body = ("int NAME(std::vector<int>& v, int n) { v.assign(n, 7); EXTRA "
            "return shared_helper(n) + private_helper(n); }\n")
    files = {"k_avx2.cpp": head + body.replace("NAME", "f_avx2").replace("EXTRA", ""),
             "k_avx512.cpp": head + body.replace("NAME", "f_avx512").replace(
                 "EXTRA", "std::vector<short> s(n); s.assign(n, 2);")}
    for name, text in files.items():
        (src / name).write_text(text)
        subprocess.run(["g++", "-O0", "-std=c++17", "-c", str(src / name), "-o", str(src / (name + ".o"))],
                       check=True)
    found = {(kind, _checker().demangle(sym)): set(where) for kind, sym, where in _checker().find_hazards(
        str(tmp_path))}
    objs = {"k_avx2.cpp.o", "k_avx512.cpp.o"}
    assert found[("shared", "shared_helper(int)")] == objs, found
    assert found[("shared", "std::vector<int, std::allocator<int> >::_M_fill_assign(unsigned long, int const&)")] \
        == objs, found
    assert any(kind == "latent" and "std::vector<short" in name for kind, name in found), found
    assert not any("private_helper" in name for _, name in found), found
