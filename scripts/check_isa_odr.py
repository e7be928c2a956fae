#!/usr/bin/env python3
"""Lists weak (COMDAT) symbols that can make code run instructions of an ISA it was not
compiled for. The linker keeps ONE copy of a weak symbol (an inline function, a template
instance such as std::vector<int>::_M_fill_assign) for the whole library, so if objects
compiled with different instruction-set flags define it, baseline or AVX2 code may end up
calling the copy compiled with AVX-512 / dotprod / fp16 flags (SIGILL on a CPU without them).

    python scripts/check_isa_odr.py build/cp311-cp311-linux_x86_64 [build/aarch64-tests]
    python scripts/check_isa_odr.py --O0 build/cp311-cp311-linux_x86_64

--O0 recompiles each ISA-flagged source of the build (its build.ninja command, -O0 instead
of -O2, into a temporary dir) and lists the weak symbols those objects define: the inline
functions that only inlining keeps out of the release objects (the compiler may stop
inlining them with another version, -Os or a larger caller).

An object's ISA is its actual instruction-set flags (-m..., -march=...) from the build
dir's build.ninja, minus the flags every object has; without build.ninja, the rule of
runtime/CMakeLists.txt (the most specific ISA name in the path under src/cpu/; register_*
files and neon without flags). Three kinds, all reported (exit status 1 if any):
  shared   a weak symbol defined by objects of different ISAs (the linker merges them);
  crossref a weak symbol defined only by ISA objects and referenced by another ISA's object;
  latent   any other weak symbol an ISA object defines: harmless today, shared as soon as
           another file instantiates the same inline function or template (or a build with
           other inlining decisions emits it).
Fix: ISA-flagged files hold only kernel code with internal linkage (anonymous namespace /
static); glue that uses std:: containers, strings or shared inline helpers goes to a file
compiled without ISA flags."""
import collections
import glob
import os
import re
import subprocess
import sys

TAGS = ("avx512_vnni", "avx_vnni", "avx512", "avx2", "neon_fp16", "neon_dot")  # neon: no flags
ISA_FLAG = re.compile(r"^-m(arch|cpu|fpu|tune)?=?.*")
WEAK = "WVu"


def _path_isa(path: str) -> str:
    rel = path.split("/src/cpu/")[-1] if "/src/cpu/" in path else ""
    if not rel or rel.split("/")[-1].startswith("register_"):
        return ""
    return next((t for t in TAGS if t in rel), "")


def _ninja_flags(build_dir: str) -> dict:
    """object path (absolute) -> the -m / -march flags of its compile command."""
    path = os.path.join(build_dir, "build.ninja")
    if not os.path.exists(path):
        return {}
    flags, out = {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("build "):
                target = line[6:].split(":", 1)[0].split(" ")[0].replace("$ ", " ")
                out = os.path.normpath(os.path.join(build_dir, target)) if target.endswith(".o") else None
            elif out and line.startswith("  FLAGS = "):
                flags[out] = frozenset(t for t in line[10:].split() if ISA_FLAG.match(t))
    return flags


def object_isas(build_dir: str) -> dict:
    """object path -> ISA label ('' for baseline)."""
    objs = [os.path.normpath(o) for o in glob.glob(build_dir + "/**/*.o", recursive=True)]
    flags = _ninja_flags(build_dir)
    known = [flags[o] for o in objs if o in flags]
    if not known:
        return {o: _path_isa(o) for o in objs}
    common = frozenset.intersection(*known)
    return {o: " ".join(sorted(flags[o] - common)) if o in flags else _path_isa(o) for o in objs}


def _symbols(obj: str):
    out = subprocess.run(["nm", obj], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            yield "U", parts[1]
        elif len(parts) >= 3 and parts[1] in WEAK and not parts[2].startswith("DW.ref."):
            yield "W", parts[2]


def _ninja_commands(build_dir: str) -> list:
    """[(source, compile command without -o/-MD)] of the build's ISA-flagged objects."""
    path = os.path.join(build_dir, "build.ninja")
    rules, cmds, cur, var = {}, [], None, {}
    with open(os.path.join(build_dir, "CMakeFiles", "rules.ninja"), encoding="utf-8") as f:
        rule = None
        for line in f:
            if line.startswith("rule "):
                rule = line.split()[1]
            elif rule and line.strip().startswith("command = "):
                rules[rule] = line.split("=", 1)[1].strip()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in list(f) + ["\n"]:
            if line.startswith("  ") and cur:
                k, _, v = line.strip().partition(" = ")
                var[k] = v
                continue
            if cur and cur[0] in rules:
                isa = [t for t in var.get("FLAGS", "").split() if ISA_FLAG.match(t)]
                if isa and not os.path.basename(cur[1]).startswith("register_"):
                    cmd = rules[cur[0]].split(" -MD ")[0].split("$FLAGS")[0].strip()
                    cmd = cmd.replace("$DEFINES", var.get("DEFINES", "")).replace("$INCLUDES", var.get("INCLUDES", ""))
                    flags = [t for t in var.get("FLAGS", "").split() if not re.match(r"^-O\d|^-g", t)]
                    cmds.append((cur[1], cmd.split() + flags + ["-O0"]))
            cur, var = None, {}
            if line.startswith("build ") and ".o:" in line:
                rest = line.split(":", 1)[1].split()
                if len(rest) >= 2 and "/src/cpu/" in rest[1]:
                    cur = (rest[0], rest[1])
    return cmds


def find_o0_weak(build_dir: str):
    """[(source, [weak symbols])] of the ISA-flagged sources recompiled at -O0."""
    import tempfile
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (src, cmd) in enumerate(_ninja_commands(build_dir)):
            obj = os.path.join(tmp, f"{i}.o")
            subprocess.run(cmd + ["-c", src, "-o", obj], check=True)
            weak = sorted({s for k, s in _symbols(obj) if k == "W"})
            if weak:
                found.append((src, weak))
    return found


def find_hazards(build_dir: str):
    """[(kind, symbol (mangled), {object basename: ISA label})] of one build dir."""
    isas = object_isas(build_dir)
    defs, refs = collections.defaultdict(dict), collections.defaultdict(dict)
    for o, isa in isas.items():
        for kind, sym in _symbols(o):
            (defs if kind == "W" else refs)[sym][o] = isa
    found = []
    for sym, where in sorted(defs.items()):
        def_isas = set(where.values())
        if def_isas == {""}:
            continue
        names = {os.path.basename(o): i for o, i in where.items()}
        if len(def_isas) > 1:
            found.append(("shared", sym, names))
            continue
        users = {os.path.basename(o): i for o, i in refs.get(sym, {}).items() if i not in def_isas}
        if users:
            found.append(("crossref", sym, {**names, **users}))
        else:
            found.append(("latent", sym, names))
    return found


def demangle(sym: str) -> str:
    return subprocess.run(["c++filt", sym], capture_output=True, text=True).stdout.strip() or sym


def describe(build_dir: str, kind: str, sym: str, where: dict) -> str:
    isa_objs = sorted(f"{o} [{i}]" for o, i in where.items() if i)
    nbase = sum(1 for i in where.values() if not i)
    return (f"{build_dir}: {kind}: {demangle(sym)[:200]}\n    ISA objects: {', '.join(isa_objs)}"
            + (f" (+{nbase} baseline)" if nbase else ""))


def main(dirs) -> int:
    found = 0
    if dirs and dirs[0] == "--O0":
        for d in dirs[1:]:
            for src, weak in find_o0_weak(d):
                found += len(weak)
                print(f"{d}: -O0 {src.split('/src/cpu/')[-1]}: " + "; ".join(demangle(w)[:120] for w in weak))
        print(f"{found} weak symbol(s) in ISA-flagged sources compiled at -O0")
        return 1 if found else 0
    for d in dirs:
        for kind, sym, where in find_hazards(d):
            found += 1
            print(describe(d, kind, sym, where))
    print(f"{found} weak symbol(s) defined by ISA-flagged objects (shared, cross-referenced or latent)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build/cp311-cp311-linux_x86_64"]))
