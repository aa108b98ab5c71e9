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

// One row of the gradient, given the row's softmax max and sum (local, or combined across
// tensor-parallel ranks): dz_j = dloss * (exp(z_j - max) / sum - [j == target]) for j < valid,
// 0 for padding columns [valid, cols). A target outside [0, valid) lives on another rank.
void cross_entropy_grad_row(const float* z, float* dz, int64_t valid, int64_t cols, float max, float sum,
                            int64_t target, float dloss) {
  const float scale = dloss / sum;
#pragma omp simd
  for (int64_t j = 0; j < valid; ++j) dz[j] = expf(z[j] - max) * scale;
  if (target >= 0 && target < valid) dz[target] -= dloss;
  for (int64_t j = valid; j < cols; ++j) dz[j] = 0.0f;
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
    cross_entropy_grad_row(z, dz, vocab, Vp, st.max, st.sum, pt[n], dloss);
  }
}

// Tensor-parallel counterpart: this rank holds columns [col0, col0 + Vl) of the vocabulary, of
// which the first `valid` are real; mx and sum are already combined across the group.
void CpuBackend::vocab_parallel_cross_entropy_backward(Tensor& dlogits, const Tensor& logits,
                                                       const Tensor& mx, const Tensor& sum,
                                                       const Tensor& targets, int64_t col0, int64_t valid,
                                                       float dloss) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(dlogits.numel() == logits.numel(), "vocab-parallel cross-entropy grad shape");
  const float* pz = logits.data<float>();
  const float* pm = mx.data<float>();
  const float* ps = sum.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* pd = dlogits.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* dz = pd + n * Vl;
    if (pt[n] < 0) {
      for (int64_t j = 0; j < Vl; ++j) dz[j] = 0.0f;
      continue;
    }
    cross_entropy_grad_row(pz + n * Vl, dz, valid, Vl, pm[n], ps[n], static_cast<int64_t>(pt[n]) - col0, dloss);
  }
}

}  // namespace kervan
