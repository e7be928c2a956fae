# Optimized fp32 CPU kernels (gemm/, x86/, neon/) WITHOUT the runtime core: the source
# list and per-file ISA flags for builds that want the kernels alone (the standalone
# kernel tests and GEMM benchmark in runtime/tests/kernel_tests/). The runtime library
# itself does not include this file: runtime/CMakeLists.txt globs src/cpu/ and applies
# the same flags by file name (see runtime/KERNELS.md); the register_*.cpp glue files,
# which need the core, are deliberately not listed here.
#   include(<repo>/runtime/src/cpu/kernels.cmake)
#   add_library(k STATIC ${MOBRT_CPU_KERNEL_SOURCES})
# The x86 SIMD files get per-file ISA flags; dispatch picks them at run time, so the
# code stays baseline x86-64 and runs on any x86-64 CPU.
set(_mobrt_cpu "${CMAKE_CURRENT_LIST_DIR}")

set(MOBRT_CPU_KERNEL_SOURCES
  ${_mobrt_cpu}/gemm/sgemm.cpp
  ${_mobrt_cpu}/gemm/f32_gemm_scalar.cpp
  ${_mobrt_cpu}/gemm/ops_scalar.cpp
  ${_mobrt_cpu}/gemm/dispatch.cpp
  ${_mobrt_cpu}/gemm/conv2d.cpp
  ${_mobrt_cpu}/gemm/layers.cpp
)

string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _mobrt_proc)
if(_mobrt_proc MATCHES "^(x86_64|amd64|x64)$")
  set(MOBRT_CPU_ARCH x86)
  list(APPEND MOBRT_CPU_KERNEL_SOURCES
    ${_mobrt_cpu}/x86/isa_x86.cpp
    ${_mobrt_cpu}/x86/f32_gemm_avx2.cpp
    ${_mobrt_cpu}/x86/ops_avx2.cpp
    ${_mobrt_cpu}/x86/f32_gemm_avx512.cpp
    ${_mobrt_cpu}/x86/ops_avx512.cpp)
  set_source_files_properties(
    ${_mobrt_cpu}/x86/f32_gemm_avx2.cpp ${_mobrt_cpu}/x86/ops_avx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(
    ${_mobrt_cpu}/x86/f32_gemm_avx512.cpp ${_mobrt_cpu}/x86/ops_avx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma")
elseif(_mobrt_proc MATCHES "^(aarch64|arm64)$")
  set(MOBRT_CPU_ARCH neon)
  list(APPEND MOBRT_CPU_KERNEL_SOURCES
    ${_mobrt_cpu}/neon/isa_neon.cpp
    ${_mobrt_cpu}/neon/f32_gemm_neon.cpp
    ${_mobrt_cpu}/neon/ops_neon.cpp)
else()
  set(MOBRT_CPU_ARCH none)  # scalar tables only
endif()
