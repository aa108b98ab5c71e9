#pragma once
#include <cstdint>

namespace kervan {

// Row-major single-precision GEMM:  C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C,
// op(X) = X or X^T, leading dimensions in elements. beta = 0 never reads C.
//
// Where the CPU has AVX-512 this is kervan's own blocked kernel (gemm_avx512.cpp), which uses the
// full 512-bit width whatever OpenBLAS is pinned to; elsewhere it is OpenBLAS's cblas_sgemm. The
// own kernel splits work over m and n only, never over k, so every element of C is summed in one
// fixed order: the result is the same bits for any thread count.
//
// `threads` > 1 runs an OpenMP team; callers already inside a parallel region pass 1.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads);

// Which implementation sgemm uses on this machine: "avx512" or "openblas". KERVAN_GEMM=openblas in
// the environment forces OpenBLAS (to compare, or to rule the kernel out).
const char* sgemm_kernel_name();

}  // namespace kervan
