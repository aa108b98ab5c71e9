// Cross-entropy over a vocabulary split by columns across tensor-parallel ranks (math in
// core/backend.h): each rank reduces its own columns; the caller combines the per-row partial
// max, sum of exponentials and target logit across the group with all-reduces.
#include <cmath>
#include <limits>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::vocab_parallel_row_max(Tensor& mx, const Tensor& logits, int64_t valid) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(valid >= 0 && valid <= Vl && mx.numel() == N, "vocab-parallel max shapes");
  const float* pz = logits.data<float>();
  float* pm = mx.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float m = std::numeric_limits<float>::lowest();
    for (int64_t j = 0; j < valid; ++j) m = std::max(m, pz[n * Vl + j]);
    pm[n] = m;
  }
}

void CpuBackend::vocab_parallel_exp_sum_target(Tensor& sum, Tensor& tgt, const Tensor& logits,
                                               const Tensor& mx, const Tensor& targets, int64_t col0,
                                               int64_t valid) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(sum.numel() == N && tgt.numel() == N && mx.numel() == N && targets.numel() == N,
               "vocab-parallel cross-entropy shapes");
  const float* pz = logits.data<float>();
  const float* pm = mx.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* ps = sum.data<float>();
  float* pg = tgt.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* z = pz + n * Vl;
    float s = 0.0f;
    for (int64_t j = 0; j < valid; ++j) s += std::exp(z[j] - pm[n]);
    ps[n] = s;
    const int64_t j = static_cast<int64_t>(pt[n]) - col0;
    pg[n] = pt[n] >= 0 && j >= 0 && j < valid ? z[j] : 0.0f;
  }
}

}  // namespace kervan
