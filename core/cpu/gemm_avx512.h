#pragma once
#include <cstdint>

namespace kervan {

// kervan's own AVX-512 GEMM (see gemm.h for the contract). Only call it where the CPU has
// AVX-512 F/VL/DQ/BW: sgemm() checks that once.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads);

}  // namespace kervan
