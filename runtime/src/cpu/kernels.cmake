# Optimized fp32 CPU kernels (gemm/, f32/, x86/, neon/) WITHOUT the runtime core: the
# source list and per-file ISA flags for builds that want the kernels alone (the
# standalone kernel tests and GEMM benchmark in runtime/tests/kernel_tests/). The
# runtime library itself does not include this file: runtime/CMakeLists.txt globs
# src/cpu/ and applies flags by file name (see runtime/KERNELS.md); the flags below are
# the same ones. Not listed: the register_*.cpp files and the *_kernel.h glue, which need
# the core (the kernel registry is the one dispatch; here each F32Kernels table, see
# f32/f32_kernels.h, is called directly).
#   include(<repo>/runtime/src/cpu/kernels.cmake)
#   add_library(k STATIC ${MOBRT_CPU_KERNEL_SOURCES})
#   target_include_directories(k PUBLIC <repo>/runtime/src/cpu <repo>/runtime/src)
# MOBRT_CPU_ARCH says which tables exist: x86 (kF32Avx2, kF32Avx512), neon (kF32Neon) or
# none; kF32Scalar always. The sparse fp32 tables (sparse/sparse_f32.h: kSparseF32<Isa>)
# follow the same rule.
set(_mobrt_cpu "${CMAKE_CURRENT_LIST_DIR}")

set(MOBRT_CPU_KERNEL_SOURCES
  ${_mobrt_cpu}/gemm/sgemm.cpp
  ${_mobrt_cpu}/gemm/f32_gemm_scalar.cpp
  ${_mobrt_cpu}/f32/ops_scalar.cpp
  ${_mobrt_cpu}/f32/conv_f32.cpp
  ${_mobrt_cpu}/f32/dwconv_f32.cpp
  ${_mobrt_cpu}/f32/fc_f32.cpp
  ${_mobrt_cpu}/f32/pool_f32.cpp
  ${_mobrt_cpu}/f32/elementwise_f32.cpp
  ${_mobrt_cpu}/f32/softmax_f32.cpp
  ${_mobrt_cpu}/sparse/sparse_f32.cpp
  ${_mobrt_cpu}/sparse/sparse_f32_scalar.cpp
)

string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _mobrt_proc)
if(_mobrt_proc MATCHES "^(x86_64|amd64|x64)$")
  set(MOBRT_CPU_ARCH x86)
  list(APPEND MOBRT_CPU_KERNEL_SOURCES
    ${_mobrt_cpu}/x86/f32_gemm_avx2.cpp
    ${_mobrt_cpu}/x86/ops_avx2.cpp
    ${_mobrt_cpu}/x86/f32_gemm_avx512.cpp
    ${_mobrt_cpu}/x86/ops_avx512.cpp
    ${_mobrt_cpu}/sparse/sparse_f32_avx2.cpp
    ${_mobrt_cpu}/sparse/sparse_f32_avx512.cpp)
  set_source_files_properties(
    ${_mobrt_cpu}/x86/f32_gemm_avx2.cpp ${_mobrt_cpu}/x86/ops_avx2.cpp ${_mobrt_cpu}/sparse/sparse_f32_avx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(
    ${_mobrt_cpu}/x86/f32_gemm_avx512.cpp ${_mobrt_cpu}/x86/ops_avx512.cpp
    ${_mobrt_cpu}/sparse/sparse_f32_avx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx2;-mfma")
elseif(_mobrt_proc MATCHES "^(aarch64|arm64)$")
  set(MOBRT_CPU_ARCH neon)
  list(APPEND MOBRT_CPU_KERNEL_SOURCES
    ${_mobrt_cpu}/neon/f32_gemm_neon.cpp
    ${_mobrt_cpu}/neon/ops_neon.cpp
    ${_mobrt_cpu}/sparse/sparse_f32_neon.cpp)
else()
  set(MOBRT_CPU_ARCH none)  # scalar table only
endif()
