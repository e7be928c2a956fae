#!/bin/sh
# Builds and runs benchmarks/bench_sparse_kernels.cpp (x86-64): the sparse fp32 kernels
# against the dense ones, kernel only. Usage: benchmarks/bench_sparse_kernels.sh [reps]
set -e
cd "$(dirname "$0")/.."
S=runtime/src/cpu
B=build/bench-sparse-kernels
mkdir -p $B
CXX="${CXX:-g++} -std=c++17 -O2 -Iruntime/src -I$S"
$CXX -mavx2 -mfma -c $S/x86/f32_gemm_avx2.cpp -o $B/gemm_avx2.o
$CXX -mavx2 -mfma -c $S/x86/ops_avx2.cpp -o $B/ops_avx2.o
$CXX -mavx2 -mfma -c $S/sparse/sparse_f32_avx2.cpp -o $B/sparse_avx2.o
AVX512="-mavx512f -mavx512bw -mavx512vl -mavx2 -mfma"
$CXX $AVX512 -c $S/x86/f32_gemm_avx512.cpp -o $B/gemm_avx512.o
$CXX $AVX512 -c $S/x86/ops_avx512.cpp -o $B/ops_avx512.o
$CXX $AVX512 -c $S/sparse/sparse_f32_avx512.cpp -o $B/sparse_avx512.o
$CXX benchmarks/bench_sparse_kernels.cpp $S/gemm/sgemm.cpp $S/gemm/f32_gemm_scalar.cpp \
  $S/f32/ops_scalar.cpp $S/f32/conv_f32.cpp $S/f32/dwconv_f32.cpp $S/f32/fc_f32.cpp \
  $S/sparse/sparse_f32.cpp $S/sparse/sparse_f32_scalar.cpp $B/*.o -o $B/bench -lpthread
exec $B/bench "$@"
