// Causal multi-head self-attention on a fused qkv [B, T, 3C]; per batch b and head h, with
// Q, K, V the [T, hs] slices of that head and s = 1/sqrt(hs):
//   S = s Q K^T,  P = softmax(S) over j <= i (zero above the diagonal),  O = P V
// Backward, given dO:
//   dP = dO V^T,  dV = P^T dO,  dS = P * (dP - rowsum(P * dP)),  dQ = s dS K,  dK = s dS^T Q
// Each (b, h) is one independent task of small GEMMs over blocks of query rows (so the masked
// upper triangle is mostly skipped), and OpenMP spreads the tasks. OpenBLAS's OpenMP build runs a
// GEMM called inside a parallel region on the calling thread (it checks omp_in_parallel), so the
// GEMMs need no thread setting of their own.
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {

struct HeadView {
  int64_t B, T, C, NH, hs;
};

// Query rows per block of the causal GEMMs: block i multiplies against keys [0, end of block i).
constexpr int64_t kRowBlock = 64;

HeadView head_view(const Tensor& qkv, int n_head) {
  const int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  KERVAN_CHECK(qkv.ndim() == 3 && qkv.dim(2) == 3 * C && C % n_head == 0, "attention qkv shape");
  return {B, T, C, n_head, C / n_head};
}

}  // namespace

void CpuBackend::attention_forward(Tensor& out, Tensor& probs, const Tensor& qkv, int n_head) {
  const auto [B, T, C, NH, hs] = head_view(qkv, n_head);
  KERVAN_CHECK(out.numel() == B * T * C && probs.numel() == B * NH * T * T, "attention shapes");
  KERVAN_CHECK(!overlaps(out, qkv) && !overlaps(probs, qkv) && !overlaps(out, probs),
               "attention outputs alias");
  const float s = 1.0f / std::sqrt(static_cast<float>(hs));
  const float* pqkv = qkv.data<float>();
  float* pout = out.data<float>();
  float* pprobs = probs.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      const float* q = pqkv + b * T * 3 * C + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* P = pprobs + (b * NH + h) * T * T;
      float* o = pout + b * T * C + h * hs;
      // Row block [r0, r1) only attends to columns [0, r1): skips most of the masked triangle.
      for (int64_t r0 = 0; r0 < T; r0 += kRowBlock) {
        const int64_t r1 = std::min(T, r0 + kRowBlock);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hs, s, q + r0 * 3 * C, 3 * C, k,
                    3 * C, 0.0f, P + r0 * T, T);
        for (int64_t i = r0; i < r1; ++i) {
          float* row = P + i * T;
          float mx = row[0];
          for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
          float sum = 0.0f;
          for (int64_t j = 0; j <= i; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
          for (int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, 1.0f, P + r0 * T, T, v, 3 * C,
                    0.0f, o + r0 * C, C);
      }
    }
  }
}

void CpuBackend::attention_backward(Tensor& dqkv, Tensor& dprobs, const Tensor& dout, const Tensor& qkv,
                                    const Tensor& probs, int n_head) {
  const auto [B, T, C, NH, hs] = head_view(qkv, n_head);
  KERVAN_CHECK(dqkv.numel() == qkv.numel() && dprobs.numel() == probs.numel(), "attention grads");
  KERVAN_CHECK(
      !overlaps(dqkv, qkv) && !overlaps(dqkv, dout) && !overlaps(dqkv, probs) && !overlaps(dprobs, probs),
      "attention backward: outputs alias inputs");
  const float s = 1.0f / std::sqrt(static_cast<float>(hs));
  const float* pqkv = qkv.data<float>();
  const float* pdout = dout.data<float>();
  const float* pprobs = probs.data<float>();
  float* pdqkv = dqkv.data<float>();
  float* pdprobs = dprobs.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      const int64_t off = b * T * 3 * C + h * hs;
      const float* q = pqkv + off;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* dq = pdqkv + off;
      float* dk = dq + C;
      float* dv = dq + 2 * C;
      const float* dO = pdout + b * T * C + h * hs;
      const float* P = pprobs + (b * NH + h) * T * T;
      float* dP = pdprobs + (b * NH + h) * T * T;
      for (int64_t i = 0; i < T; ++i)  // dK and dV accumulate over row blocks
        for (int64_t c = 0; c < hs; ++c) dk[i * 3 * C + c] = dv[i * 3 * C + c] = 0.0f;
      for (int64_t r0 = 0; r0 < T; r0 += kRowBlock) {
        const int64_t r1 = std::min(T, r0 + kRowBlock), n = r1 - r0;
        const float* Pb = P + r0 * T;
        float* dPb = dP + r0 * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r1, hs, 1.0f, dO + r0 * C, C, v, 3 * C, 0.0f,
                    dPb, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, n, 1.0f, Pb, T, dO + r0 * C, C, 1.0f, dv,
                    3 * C);
        for (int64_t i = r0; i < r1; ++i) {  // dP becomes dS in place
          const float* p = P + i * T;
          float* d = dP + i * T;
          float dot = 0.0f;
          for (int64_t j = 0; j <= i; ++j) dot += p[j] * d[j];
          for (int64_t j = 0; j <= i; ++j) d[j] = p[j] * (d[j] - dot);
          for (int64_t j = i + 1; j < r1; ++j) d[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, r1, s, dPb, T, k, 3 * C, 0.0f,
                    dq + r0 * 3 * C, 3 * C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, n, s, dPb, T, q + r0 * 3 * C, 3 * C,
                    1.0f, dk, 3 * C);
      }
    }
  }
}

}  // namespace kervan
