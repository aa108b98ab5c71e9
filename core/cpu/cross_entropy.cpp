// Softmax + cross-entropy over the vocabulary, fused so the probabilities are never stored:
//   loss_n = log(sum_j exp(z_nj - m_n)) + m_n - z_n,target      (m_n = max_j z_nj, j < vocab)
//   dz_nj  = dloss * (exp(z_nj - m_n) / sum - [j == target])     (0 for padding columns j >= vocab)
// Built with -ffast-math so expf vectorises; no infinities are used.
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {

struct RowSoftmax {
  float max, sum;
};

RowSoftmax row_softmax_stats(const float* z, int64_t vocab) {
  float mx = z[0];
  for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, z[j]);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < vocab; ++j) sum += expf(z[j] - mx);
  return {mx, sum};
}

}  // namespace

void CpuBackend::cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets,
                                       int64_t vocab) {
  const auto [N, Vp] = rows_cols(logits);
  KERVAN_CHECK(vocab <= Vp && targets.numel() == N && losses.numel() == N, "cross-entropy shapes");
  const float* pz = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* pl = losses.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    if (pt[n] < 0) {
      pl[n] = 0.0f;
      continue;
    }
    const float* z = pz + n * Vp;
    const RowSoftmax st = row_softmax_stats(z, vocab);
    pl[n] = std::log(st.sum) + st.max - z[pt[n]];
  }
}

void CpuBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                        int64_t vocab, float dloss) {
  const auto [N, Vp] = rows_cols(logits);
  KERVAN_CHECK(dlogits.numel() == logits.numel(), "cross-entropy grad shape");
  const float* pz = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* pdz = dlogits.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* z = pz + n * Vp;
    float* dz = pdz + n * Vp;
    if (pt[n] < 0) {
      for (int64_t j = 0; j < Vp; ++j) dz[j] = 0.0f;
      continue;
    }
    const RowSoftmax st = row_softmax_stats(z, vocab);
    const float scale = dloss / st.sum;
#pragma omp simd
    for (int64_t j = 0; j < vocab; ++j) dz[j] = expf(z[j] - st.max) * scale;
    dz[pt[n]] -= dloss;
    for (int64_t j = vocab; j < Vp; ++j) dz[j] = 0.0f;
  }
}

}  // namespace kervan
