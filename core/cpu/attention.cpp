// Multi-head attention over column blocks of q, k and v (a fused q|k|v, or a decoder's q with an
// encoder's fused k|v). Per batch b and head h, with Q [Tq, hs], K, V [Tk, hs] that head's
// columns, and a key j visible to query i unless it is padding (j >= key_lengths[b]) or, causal,
// j > i:
//   S = scale Q K^T + bias_h,  P = softmax(S) over the visible keys (0 elsewhere),  O = P V
// Backward, given dO:
//   dP = dO V^T,  dV = P^T dO,  dS = P * (dP - rowsum(P * dP)),  dbias_h = sum_b dS,
//   dQ = scale dS K,  dK = scale dS^T Q
// Each (b, h) is one independent task of small GEMMs over blocks of query rows; a block only
// multiplies against the keys some row of it can see (under a causal mask most of the upper
// triangle is skipped), and OpenMP spreads the tasks; each task's GEMMs run on its own thread
// (sgemm's threads = 1).

#include <algorithm>
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/gemm.h"
#include "core/error.h"

namespace kervan {

namespace {

// Query rows per block of GEMMs.
constexpr int64_t kRowBlock = 64;

// One column block as raw memory: head h of batch b starts at at(b, h); rows are ld apart.
struct BlockPtr {
  float* base;
  int64_t ld, per_batch, hs;
  float* at(int64_t b, int64_t h) const { return base + b * per_batch + h * hs; }
};

BlockPtr block_ptr(const ColumnBlock& c, int64_t B, int64_t T, int64_t hs, const char* what) {
  KERVAN_CHECK(
      c.t.ndim() == 3 && c.t.dim(0) == B && c.t.dim(1) == T && c.col >= 0 && c.col + c.width <= c.t.dim(2),
      std::string("attention ") + what + ": block [" + std::to_string(c.col) + ", +" +
          std::to_string(c.width) + ") of " + shape_str(c.t.shape()));
  const int64_t W = c.t.dim(2);
  return {c.t.data<float>() + c.col, W, T * W, hs};
}

struct Layout {
  int64_t B, Tq, Tk, NH, hs;
};

Layout check_layout(const ColumnBlock& q, const ColumnBlock& k, const ColumnBlock& v,
                    const AttentionSpec& spec) {
  KERVAN_CHECK(q.t.ndim() == 3 && k.t.ndim() == 3, "attention takes [B, T, W] tensors");
  const int64_t B = q.t.dim(0), Tq = q.t.dim(1), Tk = k.t.dim(1), NH = spec.n_head;
  KERVAN_CHECK(NH > 0 && q.width % NH == 0 && k.width == q.width && v.width == q.width,
               "attention: q, k, v widths differ or do not split into heads");
  KERVAN_CHECK(!spec.causal || Tq == Tk, "causal attention needs as many keys as queries");
  KERVAN_CHECK(!spec.key_lengths || spec.key_lengths->numel() == B, "attention key_lengths shape");
  KERVAN_CHECK(!spec.bias || spec.bias->numel() == NH * Tq * Tk, "attention bias shape");
  return {B, Tq, Tk, NH, q.width / NH};
}

int64_t key_length(const AttentionSpec& spec, int64_t b, int64_t Tk) {
  if (!spec.key_lengths) return Tk;
  const int64_t L = spec.key_lengths->data<int32_t>()[b];
  KERVAN_CHECK(L >= 1 && L <= Tk,
               "attention key length " + std::to_string(L) + " outside [1, " + std::to_string(Tk) + "]");
  return L;
}

// Keys [0, end) are what query row i (or, for a block, its last row r1 - 1) may see.
int64_t visible_end(const AttentionSpec& spec, int64_t i, int64_t L) {
  return spec.causal ? std::min(i + 1, L) : L;
}

}  // namespace

void CpuBackend::attention_forward(Tensor& out, Tensor& probs, const ColumnBlock& q, const ColumnBlock& k,
                                   const ColumnBlock& v, const AttentionSpec& spec) {
  const auto [B, Tq, Tk, NH, hs] = check_layout(q, k, v, spec);
  KERVAN_CHECK(out.numel() == B * Tq * NH * hs && probs.numel() == B * NH * Tq * Tk, "attention shapes");
  for (const Tensor* in : std::initializer_list<const Tensor*>{&q.t, &k.t, &v.t})
    KERVAN_CHECK(!overlaps(out, *in) && !overlaps(probs, *in), "attention outputs alias an input");
  KERVAN_CHECK(!overlaps(out, probs), "attention outputs alias each other");
  const BlockPtr Q = block_ptr(q, B, Tq, hs, "q"), K = block_ptr(k, B, Tk, hs, "k"),
                 V = block_ptr(v, B, Tk, hs, "v");
  const int64_t ldo = NH * hs;
  float* pout = out.data<float>();
  float* pprobs = probs.data<float>();
  const float* pbias = spec.bias ? spec.bias->data<float>() : nullptr;
  const float scale = spec.scale;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      const int64_t L = key_length(spec, b, Tk);
      const float* qh = Q.at(b, h);
      const float* kh = K.at(b, h);
      const float* vh = V.at(b, h);
      float* P = pprobs + (b * NH + h) * Tq * Tk;
      float* o = pout + b * Tq * ldo + h * hs;
      for (int64_t r0 = 0; r0 < Tq; r0 += kRowBlock) {
        const int64_t r1 = std::min(Tq, r0 + kRowBlock), kend = visible_end(spec, r1 - 1, L);
        sgemm(false, true, r1 - r0, kend, hs, scale, qh + r0 * Q.ld, Q.ld, kh, K.ld, 0.0f, P + r0 * Tk, Tk,
              1);
        for (int64_t i = r0; i < r1; ++i) {
          float* row = P + i * Tk;
          const int64_t jend = visible_end(spec, i, L);
          if (pbias) {
            const float* bias_row = pbias + (h * Tq + i) * Tk;
            for (int64_t j = 0; j < jend; ++j) row[j] += bias_row[j];
          }
          float mx = row[0];
          for (int64_t j = 1; j < jend; ++j) mx = std::max(mx, row[j]);
          float sum = 0.0f;
          for (int64_t j = 0; j < jend; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < jend; ++j) row[j] *= inv;
          for (int64_t j = jend; j < Tk; ++j) row[j] = 0.0f;
        }
        sgemm(false, false, r1 - r0, hs, kend, 1.0f, P + r0 * Tk, Tk, vh, V.ld, 0.0f, o + r0 * ldo, ldo, 1);
      }
    }
  }
}

void CpuBackend::attention_backward(const ColumnBlock& dq, const ColumnBlock& dk, const ColumnBlock& dv,
                                    Tensor& dprobs, const Tensor& dout, const Tensor& out,
                                    const ColumnBlock& q, const ColumnBlock& k, const ColumnBlock& v,
                                    const Tensor& probs, const AttentionSpec& spec) {
  const auto [B, Tq, Tk, NH, hs] = check_layout(q, k, v, spec);
  KERVAN_CHECK(dq.width == q.width && dk.width == k.width && dv.width == v.width, "attention grad widths");
  // out (forward's O) is not needed: the CPU keeps P, and D_i = sum_j P_ij dP_ij comes from it.
  KERVAN_CHECK(
      dprobs.numel() == probs.numel() && dout.numel() == B * Tq * NH * hs && out.numel() == dout.numel(),
      "attention grad shapes");
  for (const Tensor* g : std::initializer_list<const Tensor*>{&dq.t, &dk.t, &dv.t})
    for (const Tensor* in : std::initializer_list<const Tensor*>{&q.t, &k.t, &v.t, &dout, &probs, &dprobs})
      KERVAN_CHECK(!overlaps(*g, *in), "attention backward: a gradient aliases an input");
  KERVAN_CHECK(!overlaps(dprobs, probs), "attention backward: dprobs aliases probs");
  const BlockPtr Q = block_ptr(q, B, Tq, hs, "q"), K = block_ptr(k, B, Tk, hs, "k"),
                 V = block_ptr(v, B, Tk, hs, "v");
  const BlockPtr dQ = block_ptr(dq, B, Tq, hs, "dq"), dK = block_ptr(dk, B, Tk, hs, "dk"),
                 dV = block_ptr(dv, B, Tk, hs, "dv");
  const int64_t ldo = NH * hs;
  const bool full_ds = spec.bias != nullptr;  // the caller needs every entry of dS
  const float* pdout = dout.data<float>();
  const float* pprobs = probs.data<float>();
  float* pdprobs = dprobs.data<float>();
  const float scale = spec.scale;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      const int64_t L = key_length(spec, b, Tk);
      const float* qh = Q.at(b, h);
      const float* kh = K.at(b, h);
      const float* vh = V.at(b, h);
      float* dqh = dQ.at(b, h);
      float* dkh = dK.at(b, h);
      float* dvh = dV.at(b, h);
      const float* dO = pdout + b * Tq * ldo + h * hs;
      const float* P = pprobs + (b * NH + h) * Tq * Tk;
      float* dP = pdprobs + (b * NH + h) * Tq * Tk;
      for (int64_t j = 0; j < Tk; ++j)  // dK and dV accumulate over row blocks; padding keys stay 0
        for (int64_t c = 0; c < hs; ++c) dkh[j * dK.ld + c] = dvh[j * dV.ld + c] = 0.0f;
      for (int64_t r0 = 0; r0 < Tq; r0 += kRowBlock) {
        const int64_t r1 = std::min(Tq, r0 + kRowBlock), n = r1 - r0, kend = visible_end(spec, r1 - 1, L);
        const float* Pb = P + r0 * Tk;
        float* dPb = dP + r0 * Tk;
        sgemm(false, true, n, kend, hs, 1.0f, dO + r0 * ldo, ldo, vh, V.ld, 0.0f, dPb, Tk, 1);
        sgemm(true, false, kend, hs, n, 1.0f, Pb, Tk, dO + r0 * ldo, ldo, 1.0f, dvh, dV.ld, 1);
        for (int64_t i = r0; i < r1; ++i) {  // dP becomes dS in place
          const float* p = P + i * Tk;
          float* d = dP + i * Tk;
          const int64_t jend = visible_end(spec, i, L);
          float dot = 0.0f;
          for (int64_t j = 0; j < jend; ++j) dot += p[j] * d[j];
          for (int64_t j = 0; j < jend; ++j) d[j] = p[j] * (d[j] - dot);
          for (int64_t j = jend; j < (full_ds ? Tk : kend); ++j) d[j] = 0.0f;
        }
        sgemm(false, false, n, hs, kend, scale, dPb, Tk, kh, K.ld, 0.0f, dqh + r0 * dQ.ld, dQ.ld, 1);
        sgemm(true, false, kend, hs, n, scale, dPb, Tk, qh + r0 * Q.ld, Q.ld, 1.0f, dkh, dK.ld, 1);
      }
    }
  }
}

}  // namespace kervan
