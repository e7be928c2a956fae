"""The Android binding (android_jni/) on the desktop JDK: builds libmobconv_jni with the same
CMake project Android Studio uses (android_jni/CMakeLists.txt, linked against the libmobrt.a of
the Python package's build so Java and Python run the same objects), compiles the Java package
and its JUnit tests with javac, and runs them with `java -Djava.library.path=...`.

Oracle: the Python binding (mobconv/runtime.py, ctypes over the same C API). This file writes
the models (the bundled Caffe digits net, the zoo's MobileNetV2-style digits net, an int8
quantization of the digits net, a graph with int32/int64 tensors and a symbolic batch), their
inputs and the Python binding's outputs and tensor descriptions into a directory; the JUnit
tests (android_jni/src/test/java/ai/mobconv/InterpreterTest.java) compare bit for bit.

Also: the library exports only Java_*/JNI_On* (nm -D), docs/android.md's quick start is the
compiled and run android_jni/src/test/java/com/example/QuickStart.java verbatim."""
import fcntl
import glob
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import mobconv
from mobconv import runtime
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture: build/aarch64-tests)
from test_c_api_v2 import signature_model
from mobconv.formats.writer import write_model
from mobconv.ir import Graph, infer_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JNI = os.path.join(ROOT, "android_jni")
BUILD = os.path.join(ROOT, "build", "jni-tests")
DIGITS = os.path.join(ROOT, "model_zoo", "caffe", "digits")
QUICKSTART = os.path.join(JNI, "src", "test", "java", "com", "example", "QuickStart.java")
JUNIT_JARS = ("/usr/share/java/junit4.jar", "/usr/share/java/hamcrest-core.jar", "/usr/share/java/hamcrest.jar")


def _tool(name):
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", name)):
        return os.path.join(home, "bin", name)
    found = shutil.which(name)
    assert found, f"{name} not found: install a JDK (scripts/install-system-deps.sh) or set JAVA_HOME"
    return found


def _run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p.stdout


@pytest.fixture(scope="module")
def jni_lib():
    """build/jni-tests/libmobconv_jni.so (incremental), linked with the package build's libmobrt.a."""
    fb = os.path.join(sys.prefix, "include")
    java_home = os.path.dirname(os.path.dirname(os.path.realpath(_tool("javac"))))
    args = ["cmake", "-S", JNI, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", f"-DFLATBUFFERS_INCLUDE_DIR={fb}",
            f"-DMOBCONV_JNI_INCLUDE_DIR={java_home}/include"]
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}-*"  # the package build of this Python first
    libs = (sorted(glob.glob(os.path.join(ROOT, "build", tag, "runtime", "libmobrt.a")), key=os.path.getmtime)
            or sorted(glob.glob(os.path.join(ROOT, "build", "*", "runtime", "libmobrt.a")), key=os.path.getmtime))
    if libs:
        args.append(f"-DMOBCONV_JNI_MOBRT_LIB={libs[-1]}")
    # the package build dir is shared: link while no one rebuilds it
    with open("/tmp/mobconv-build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run(args)
        _run(["cmake", "--build", BUILD, "--target", "mobconv_jni", "-j2"], timeout=1800)
    return os.path.join(BUILD, "libmobconv_jni.so")


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("jni-classes"))
    sources = sorted(glob.glob(os.path.join(JNI, "src", "**", "*.java"), recursive=True))
    for jar in JUNIT_JARS:
        assert os.path.exists(jar), f"{jar} missing: apt-get install junit4 (scripts/install-system-deps.sh)"
    _run([_tool("javac"), "-Xlint:all", "-Werror", "-d", out, "-cp", ":".join(JUNIT_JARS)] + sources)
    return out


def _shape(shape):
    return ",".join(str(int(d)) for d in shape)


def _nbytes(shape, dtype):
    return 0 if any(d < 0 for d in shape) else int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _describe(lines, key, info, quant):
    lines[f"{key}.name"] = info["name"]
    lines[f"{key}.dtype"] = info["dtype"]
    lines[f"{key}.shape"] = _shape(info["shape"])
    lines[f"{key}.bytes"] = _nbytes(info["shape"], info["dtype"])
    if quant:
        lines[f"{key}.scales"] = _bits(quant["scales"])
        lines[f"{key}.zero_points"] = ",".join(str(z) for z in quant["zero_points"])
        lines[f"{key}.axis"] = -1 if quant["axis"] is None else quant["axis"]


def _bits(values):
    return ",".join(str(struct.unpack("<i", struct.pack("<f", v))[0]) for v in values)


def _python_signature(d, lines, model):
    m = runtime.Model(os.path.join(d, f"{model}.mob"))
    pre = m.preprocessing or {"mean": [], "scale": [], "channel_order": ""}
    lines[f"{model}.pre.mean"], lines[f"{model}.pre.scale"] = _bits(pre["mean"]), _bits(pre["scale"])
    lines[f"{model}.pre.order"] = pre["channel_order"]
    lines[f"{model}.inputs"], lines[f"{model}.outputs"] = len(m.inputs), len(m.outputs)
    for kind, infos in (("in", m.inputs), ("out", m.outputs)):
        for i, info in enumerate(infos):
            lines[f"{model}.{kind}{i}.layout"] = info["layout"]
    m.close()


def _python_case(d, lines, name, model, feeds_list):
    """Describe `model`'s tensors as the Python binding sees them; write each feed and output."""
    path = os.path.join(d, f"{model}.mob")
    m = runtime.Model(path)
    with runtime.Interpreter(path, threads=1) as it:
        if name == model:
            lines[f"{model}.inputs"], lines[f"{model}.outputs"] = len(it.inputs), len(it.outputs)
            for kind, infos, declared in (("in", it.inputs, m.inputs), ("out", it.outputs, m.outputs)):
                for i, (info, dec) in enumerate(zip(infos, declared)):
                    _describe(lines, f"{model}.{kind}{i}", info, it.quantization(info["name"]))
                    assert dec["quantization"] == it.quantization(info["name"])
                    lines[f"{model}.{kind}{i}.declared"] = _shape(dec["shape"])
                    lines[f"{model}.{kind}{i}.declared_bytes"] = _nbytes(dec["shape"], dec["dtype"])
        names = [i["name"] for i in it.inputs]
        outs = it.run(dict(zip(names, feeds_list)))
        out_names = [o["name"] for o in it.outputs]
    m.close()
    for i, x in enumerate(feeds_list):
        np.ascontiguousarray(x).tofile(os.path.join(d, f"{name}.in{i}.bin"))
        lines[f"{name}.in{i}.feed_shape"] = _shape(x.shape)
    for k, o in enumerate(out_names):
        np.ascontiguousarray(outs[o]).tofile(os.path.join(d, f"{name}.out{k}.bin"))


@pytest.fixture(scope="module")
def testdata(tmp_path_factory):
    from mobconv import quantize

    d = str(tmp_path_factory.mktemp("jni-data"))
    rng = np.random.default_rng(11)
    samples = [np.load(os.path.join(DIGITS, "samples", f)) for f in sorted(os.listdir(os.path.join(DIGITS, "samples")))]
    digits = mobconv.convert(os.path.join(DIGITS, "deploy.prototxt"),
                             caffemodel=os.path.join(DIGITS, "digits.caffemodel"))
    digits.save(os.path.join(d, "digits.mob"))
    mobconv.convert(os.path.join(ROOT, "model_zoo", "onnx", "digits_mobilenetv2.onnx")).save(os.path.join(d, "mnv2.mob"))
    quantize.quantize(digits, [{"data": s} for s in samples], scheme="int8", io_dtype="int8",
                      progress=False).save(os.path.join(d, "digits8.mob"))
    g = Graph("io")
    g.add_input("x", "float32", ("batch", 3))
    g.add_input("a", "int32", (4,))
    g.add_input("b", "int64", (2, 2))
    g.add_node("Relu", ["x"], ["y"])
    g.add_node("Add", ["a", "a"], ["a2"])
    g.add_node("Mul", ["b", "b"], ["b2"])
    g.outputs = ["y", "a2", "b2"]
    infer_shapes(g)
    write_model(g, os.path.join(d, "io.mob"))
    with open(os.path.join(d, "digits.mob"), "rb") as f:
        blob = f.read()
    with open(os.path.join(d, "bad.mob"), "wb") as f:
        f.write(blob[: len(blob) // 2])  # truncated: the runtime's validation must refuse it

    lines = {"models": "digits,mnv2,digits8,io", "version": runtime.version()}
    images = np.load(os.path.join(ROOT, "model_zoo", "onnx", "digits_heldout.npz"))["images"]
    _python_case(d, lines, "digits", "digits", [samples[0].astype(np.float32)])
    _python_case(d, lines, "digits_b3", "digits", [np.concatenate(samples[1:4]).astype(np.float32)])
    _python_case(d, lines, "mnv2", "mnv2", [images[:1]])
    _python_case(d, lines, "digits8", "digits8", [rng.integers(-128, 128, (1, 1, 8, 8), dtype=np.int8)])
    _python_case(d, lines, "io", "io", [rng.standard_normal((2, 3)).astype(np.float32),
                                        rng.integers(-1000, 1000, 4, dtype=np.int32),
                                        rng.integers(-3000, 3000, (2, 2), dtype=np.int64)])
    signature_model(os.path.join(d, "sig.mob"))  # layouts + preprocessing (test_c_api_v2's)
    _python_signature(d, lines, "sig")
    _python_signature(d, lines, "digits")
    with open(os.path.join(d, "manifest.properties"), "w") as f:
        for k, v in lines.items():
            f.write(f"{k}={v}\n")
    return d


def test_jni_library_exports_only_jni_symbols(jni_lib):
    out = _run(["nm", "-D", "--defined-only", jni_lib])
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "Java_ai_mobconv_Interpreter_nativeInvoke" in names and "JNI_OnLoad" in names
    bad = [n for n in names if not (n.startswith("Java_") or n.startswith("JNI_On"))]
    assert not bad, f"{jni_lib} exports non-JNI symbols (android_jni/mobconv_jni.map): {bad[:10]}"


def test_arm64_jni_library_cross_builds_and_exports_only_jni_symbols(mobrt_run_aarch64):  # noqa: F811
    """The same CMake project cross-built for arm64 (what `make cross` does) against the arm64
    libmobrt.a of build/aarch64-tests; no arm64 JVM here, so it is built and inspected, not run."""
    a64 = os.path.join(ROOT, "build", "aarch64-tests")
    out = os.path.join(ROOT, "build", "jni-tests-aarch64")
    java_home = os.path.dirname(os.path.dirname(os.path.realpath(_tool("javac"))))
    with open(os.path.join(ROOT, "build", "aarch64-tests.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run(["cmake", "-S", JNI, "-B", out, "-DCMAKE_BUILD_TYPE=Release",
              f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/runtime/cmake/aarch64-linux-gnu.cmake",
              f"-DFLATBUFFERS_INCLUDE_DIR={os.path.join(sys.prefix, 'include')}",
              f"-DMOBCONV_JNI_INCLUDE_DIR={java_home}/include", f"-DMOBCONV_JNI_MOBRT_LIB={a64}/libmobrt.a"])
        _run(["cmake", "--build", out, "--target", "mobconv_jni", "-j2"], timeout=1800)
    lib = os.path.join(out, "libmobconv_jni.so")
    assert "AArch64" in _run(["readelf", "-h", lib])
    names = [line.split()[-1] for line in _run(["aarch64-linux-gnu-nm", "-D", "--defined-only", lib]).splitlines()]
    assert "Java_ai_mobconv_Interpreter_nativeInvoke" in names
    assert all(n.startswith(("Java_", "JNI_On")) for n in names), [n for n in names if not n.startswith("J")][:10]
    _run(["aarch64-linux-gnu-strip", "-o", lib + ".stripped", lib])
    print(f"arm64 libmobconv_jni.so stripped: {os.path.getsize(lib + '.stripped')} bytes")


def test_junit_suite_matches_python_binding(jni_lib, classes, testdata):
    cmd = [_tool("java"), "-Xms64m", "-Xmx64m", "-XX:+AlwaysPreTouch", "-Xcheck:jni",
           f"-Djava.library.path={os.path.dirname(jni_lib)}", f"-Dmobconv.testdata={testdata}",
           "-cp", ":".join((classes,) + JUNIT_JARS), "org.junit.runner.JUnitCore", "ai.mobconv.InterpreterTest"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and "OK (" in p.stdout, f"JUnit failed:\n{p.stdout[-8000:]}\n{p.stderr[-3000:]}"
    # -Xcheck:jni reports misuse of JNI (a pending exception ignored, a wrong type) as warnings
    assert "WARNING in native method" not in p.stdout + p.stderr, p.stdout[-4000:] + p.stderr[-4000:]
    tests = int(re.search(r"OK \((\d+) tests?\)", p.stdout).group(1))
    assert tests >= 15
    print(re.search(r"RSS over .*", p.stdout).group(0))


def test_quick_start_runs_and_agrees_with_python(jni_lib, classes, testdata, tmp_path):
    path = os.path.join(testdata, "digits.mob")
    for f in sorted(os.listdir(os.path.join(DIGITS, "samples"))):
        x = np.load(os.path.join(DIGITS, "samples", f)).astype(np.float32)
        x.tofile(tmp_path / "image.f32")
        want = int(runtime.Interpreter(path).run({"data": x})["prob"].argmax())
        out = _run([_tool("java"), f"-Djava.library.path={os.path.dirname(jni_lib)}", "-cp", classes,
                    "com.example.QuickStart", path, str(tmp_path / "image.f32")], timeout=120)
        assert out.strip() == f"digit: {want}", (f, out)


def test_docs_quick_start_is_the_tested_code():
    with open(os.path.join(ROOT, "docs", "android.md")) as f:
        doc = f.read()
    m = re.search(r"<!-- quickstart: android_jni/src/test/java/com/example/QuickStart.java -->\n```java\n(.*?)```",
                  doc, re.S)
    assert m, "docs/android.md lacks the quick start block"
    with open(QUICKSTART) as f:
        assert m.group(1) == f.read(), "docs/android.md's quick start differs from QuickStart.java"


def test_backend_codes_match_the_header():
    with open(os.path.join(ROOT, "runtime", "include", "mobrt.h")) as f:
        header = f.read()
    body = re.search(r"typedef enum mobrt_backend \{(.*?)\}", header, re.S).group(1)
    want = {n: int(v) for n, v in re.findall(r"MOBRT_BACKEND_(\w+)\s*=\s*(\d+)", body)}
    with open(os.path.join(JNI, "src", "main", "java", "ai", "mobconv", "Interpreter.java")) as f:
        got = {n: int(v) for n, v in re.findall(r"^\s+(\w+)\((\d+)\)[,;]", f.read(), re.M)}
    assert got == want


def test_android_studio_files_point_at_this_project():
    with open(os.path.join(JNI, "build.gradle")) as f:
        gradle = f.read()
    path = re.search(r"path\s+['\"]([^'\"]+)['\"]", gradle).group(1)
    assert os.path.normpath(os.path.join(JNI, path)) == os.path.join(JNI, "CMakeLists.txt")
    for abi in ("arm64-v8a", "armeabi-v7a", "x86_64"):
        assert f"'{abi}'" in gradle
    assert os.path.exists(os.path.join(JNI, "src", "main", "AndroidManifest.xml"))


# Android API level of every JDK class the library's main sources may reference (developer.android.com
# "Added in API level"). A class missing here fails the test below: look its level up and add it.
ANDROID_API = {
    "java/io/File": 1, "java/io/Serializable": 1, "java/io/IOException": 1, "java/io/RandomAccessFile": 1,
    "java/io/PrintStream": 1, "java/nio/FloatBuffer": 1, "java/nio/channels/FileChannel": 1,
    "java/nio/channels/FileChannel$MapMode": 1, "java/lang/AutoCloseable": 19, "java/lang/Byte": 1,
    "java/lang/Class": 1, "java/lang/Enum": 1, "java/lang/Exception": 1, "java/lang/Float": 1,
    "java/lang/IllegalArgumentException": 1, "java/lang/IllegalStateException": 1, "java/lang/Integer": 1,
    "java/lang/InterruptedException": 1, "java/lang/Long": 1, "java/lang/NoSuchFieldError": 1,
    "java/lang/Object": 1, "java/lang/Runnable": 1, "java/lang/RuntimeException": 1, "java/lang/String": 1,
    "java/lang/StringBuilder": 1, "java/lang/System": 1, "java/lang/Thread": 1, "java/lang/Throwable": 1,
    "java/lang/ref/PhantomReference": 1, "java/lang/ref/ReferenceQueue": 1, "java/lang/ref/Reference": 1,
    "java/lang/reflect/Array": 1, "java/nio/Buffer": 1, "java/nio/ByteBuffer": 1, "java/nio/ByteOrder": 1,
    "java/nio/MappedByteBuffer": 1, "java/util/ArrayList": 1, "java/util/Arrays": 1, "java/util/Collections": 1,
    "java/util/Iterator": 1, "java/util/List": 1, "java/util/Map": 1, "java/util/Map$Entry": 1, "java/util/Set": 1,
    "java/util/Objects": 19, "java/util/concurrent/ConcurrentHashMap": 1,
    "java/util/concurrent/atomic/AtomicLong": 1, "java/util/concurrent/locks/ReentrantLock": 1,
    "java/util/concurrent/locks/ReentrantReadWriteLock": 1,
    "java/util/concurrent/locks/ReentrantReadWriteLock$ReadLock": 1,
    "java/util/concurrent/locks/ReentrantReadWriteLock$WriteLock": 1,
}
# Methods newer than their (old) class: Java 8/9+ additions Android got only from API 24 to 34.
LATE_METHODS = re.compile(
    r"java/lang/Math\.\w+Exact|java/lang/(Integer|Long)\.(hashCode|sum|max|min|\w*[Uu]nsigned\w*):"
    r"|java/lang/String\.(join|chars|codePoints|repeat|isBlank|strip\w*|lines):"
    r"|java/util/(List|Map|Set)\.(of|copyOf|ofEntries|entry):"
    r"|java/util/Map\.(getOrDefault|putIfAbsent|compute\w*|forEach|merge|replaceAll):"
    r"|java/util/(Collection|List|Set|Arrays)\.(stream|forEach|removeIf|spliterator|setAll|parallel\w*):"
    r"|java/lang/Iterable\.forEach:|java/util/Objects\.(requireNonNullElse\w*|check\w*Index\w*):"
    r"|java/lang/ThreadLocal\.withInitial:|java/lang/Thread\.onSpinWait:|java/lang/ref/Reference\.reachabilityFence:"
    # Java 9 made ByteBuffer.position(int)/flip()/... return ByteBuffer; older Android has only Buffer's
    r"|java/nio/\w+Buffer\.(position|limit|flip|clear|mark|reset|rewind):\(I?\)Ljava/nio/\w+Buffer;"
    r"|java/nio/\w+Buffer\.(slice|duplicate):\(II\)|java/nio/\w+Buffer\.mismatch:")
# bionic functions the runtime might call that Android added after API 21 (libc's "introduced in").
LATE_LIBC = {"aligned_alloc": 28, "timespec_get": 29, "getrandom": 28, "getentropy": 28, "reallocarray": 29,
             "memfd_create": 30, "pthread_getname_np": 26, "getloadavg": 29, "glob": 28, "posix_spawn": 28,
             "fmemopen": 23, "open_memstream": 23, "mempcpy": 23, "strchrnul": 24, "pthread_barrier_init": 24,
             "pthread_barrier_wait": 24, "pthread_spin_lock": 28, "pthread_setschedprio": 28, "getifaddrs": 24,
             "lockf": 24, "preadv": 24, "pwritev": 24, "sync_file_range": 26, "copy_file_range": 34}
MIN_SDK = 21


def android_api_problems(main_sources, out):
    """Which JDK classes/methods the compiled main sources use beyond Android API MIN_SDK (a list of lines)."""
    _run([_tool("javac"), "--release", "8", "-Xlint:all", "-Werror", "-d", out] + main_sources)
    classes = sorted(glob.glob(os.path.join(out, "**", "*.class"), recursive=True))
    dump = _run([_tool("javap"), "-v", "-p"] + classes)
    problems = []
    for line in dump.splitlines():
        m = re.match(r"\s*#\d+ = (Methodref|InterfaceMethodref|Fieldref|Class|InvokeDynamic)\s+\S+\s+// (.*)", line)
        if not m:
            continue
        kind, ref = m.groups()
        if kind == "InvokeDynamic":
            problems.append(f"invokedynamic (a lambda, method reference or Java 9+ string concatenation): {ref}")
            continue
        ref = ref.strip('"')
        cls = ref.split(".")[0]
        if cls.startswith("[") or not cls.startswith(("java/", "javax/", "sun/", "jdk/")):
            continue
        if ANDROID_API.get(cls, 10**6) > MIN_SDK:
            problems.append(f"{cls}: Android API level {ANDROID_API.get(cls, 'unknown (not in ANDROID_API)')}")
        if LATE_METHODS.search(ref):
            problems.append(f"{ref}: added to Android after API {MIN_SDK}")
    return sorted(set(problems))


def late_libc_calls(dirs):
    """Calls of bionic functions newer than API MIN_SDK in the C/C++ sources under dirs."""
    call = re.compile(r"(?<![\w.>])(?:std::|::)?(" + "|".join(LATE_LIBC) + r")\s*\(")
    found = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "**", "*"), recursive=True)):
            if not path.endswith((".c", ".cc", ".cpp", ".h", ".hpp")):
                continue
            with open(path, errors="replace") as f:
                for n, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    for m in call.finditer(code):
                        found.append(f"{os.path.relpath(path, ROOT)}:{n}: {m.group(1)} (Android API {LATE_LIBC[m.group(1)]})")
    return found


def test_library_needs_at_most_android_api_21(tmp_path):
    """minSdk 21: the Java package uses nothing newer than API 21 (no Cleaner, streams, java.nio.file,
    java.lang.invoke), and the native code (JNI glue and runtime) no libc function bionic added later."""
    with open(os.path.join(JNI, "build.gradle")) as f:
        assert re.search(r"^\s*minSdk\s+(\d+)", f.read(), re.M).group(1) == str(MIN_SDK)
    main = sorted(glob.glob(os.path.join(JNI, "src", "main", "java", "**", "*.java"), recursive=True))
    assert android_api_problems(main, str(tmp_path)) == []
    # the quick start (docs/android.md) runs on Android as it is
    quick = android_api_problems(main + [QUICKSTART], str(tmp_path / "q"))
    assert quick == []
    assert late_libc_calls([os.path.join(ROOT, "runtime", "src"), os.path.join(ROOT, "runtime", "include"),
                            os.path.join(JNI, "src", "main", "cpp")]) == []
