#include "core/cpu/gemm.h"

#include <cblas.h>

#include <cstdlib>
#include <cstring>

#include "core/cpu/gemm_avx512.h"

namespace kervan {
namespace {

bool use_avx512() {
  const char* forced = std::getenv("KERVAN_GEMM");
  if (forced != nullptr && std::strcmp(forced, "openblas") == 0) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
}

bool avx512_enabled() {
  static const bool enabled = use_avx512();
  return enabled;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads) {
  if (avx512_enabled()) {
    sgemm_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    return;
  }
  // OpenBLAS (OpenMP build) runs single-threaded by itself when called inside a parallel region.
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char* sgemm_kernel_name() {
  return avx512_enabled() ? "avx512" : "openblas";
}

}  // namespace kervan
