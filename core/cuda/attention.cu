// Multi-head attention, memory-efficient (flash-style): the [Tq, Tk] score matrix never reaches
// global memory. Twin of core/cpu/attention.cpp, which has the same math:
//   S = scale Q K^T + bias_h,  P = softmax(S) over the visible keys,  O = P V
// Forward keeps, per query row i, a running max m, sum l and output accumulator over the visible
// keys (the online softmax), and saves only lse_i = m + log l  [B, NH, Tq]. Backward recomputes
//   p_ij = exp(s_ij - lse_i),  dP_ij = dO_i . v_j,  D_i = sum_j p_ij dP_ij,  dS_ij = p_ij (dP_ij - D_i)
//   dQ_i = scale sum_j dS_ij k_j   (one warp per query row, which also writes dS when a bias needs it)
//   dV_j = sum_i p_ij dO_i,  dK_j = scale sum_i dS_ij q_i   (one warp per key row)
// so every output has one writer and no atomics: deterministic. Each lane holds head-dimension
// elements lane, lane + 32, ... (R of them, hs <= 32 R); a dot product is a warp sum, computed the
// same way in forward and backward, so the recomputed s_ij equal the forward's bit for bit.
// This is the exact version: fp32 throughout, one warp walking keys one at a time with CUDA-core
// FMAs. At precision BF16 the tiled tensor-core kernel (attention_flash.cu) takes what it can;
// use_flash() below says which problems.
#include <cfloat>
#include <cstdint>
#include <vector>

#include "core/cuda/attention_flash.h"
#include "core/cuda/backend_impl.h"
#include "core/cuda/reduce.cuh"

namespace kervan {

using namespace cuda;

namespace {

constexpr int kWarps = 4;  // warps (rows) per block
constexpr int kMaxHeadSize = 256;

// One column block of a [B, T, W] tensor: head h of batch b, row t starts at at(b, t, h).
struct Cols {
  float* base;
  int64_t ld, T, hs;
  __device__ float* at(int64_t b, int64_t t, int64_t h) const { return base + (b * T + t) * ld + h * hs; }
};

struct Dims {
  int64_t B, Tq, Tk, NH, hs;
  float scale;
  bool causal;
  const int32_t* key_lengths;  // device, or null
  const float* bias;           // device [NH, Tq, Tk], or null
};

__device__ __forceinline__ int64_t key_len(const Dims& d, int64_t b) {
  return d.key_lengths ? d.key_lengths[b] : d.Tk;
}

template <int R>
__device__ __forceinline__ void load(float (&r)[R], const float* p, int64_t hs) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int64_t c = lane + 32 * k;
    r[k] = c < hs ? p[c] : 0.0f;
  }
}

template <int R>
__device__ __forceinline__ float dot(const float (&a)[R], const float* p, int64_t hs) {
  const int lane = threadIdx.x % 32;
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int64_t c = lane + 32 * k;
    if (c < hs) s += a[k] * p[c];
  }
  return warp_sum(s);
}

// The score s_ij, computed identically wherever it is needed.
template <int R>
__device__ __forceinline__ float score(const Dims& d, const float (&q)[R], const float* k, int64_t h,
                                       int64_t i, int64_t j) {
  float s = d.scale * dot<R>(q, k, d.hs);
  if (d.bias) s += d.bias[(h * d.Tq + i) * d.Tk + j];
  return s;
}

template <int R>
__global__ void forward_kernel(Dims d, Cols Q, Cols K, Cols V, float* out, float* lse) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32, h = blockIdx.y,
                b = blockIdx.z;
  if (i >= d.Tq) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const int64_t L = key_len(d, b), jend = d.causal ? min(i + 1, L) : L;
  float q[R], acc[R];
  load<R>(q, Q.at(b, i, h), d.hs);
#pragma unroll
  for (int k = 0; k < R; ++k) acc[k] = 0.0f;
  float m = -FLT_MAX, l = 0.0f;
  for (int64_t j = 0; j < jend; ++j) {
    const float s = score<R>(d, q, K.at(b, j, h), h, i, j);
    const float m_new = fmaxf(m, s), corr = expf(m - m_new), p = expf(s - m_new);
    l = l * corr + p;
    const float* v = V.at(b, j, h);
#pragma unroll
    for (int k = 0; k < R; ++k) {
      const int64_t c = lane + 32 * k;
      acc[k] = acc[k] * corr + (c < d.hs ? p * v[c] : 0.0f);
    }
    m = m_new;
  }
  float* o = out + (b * d.Tq + i) * d.NH * d.hs + h * d.hs;
  const float inv = 1.0f / l;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int64_t c = lane + 32 * k;
    if (c < d.hs) o[c] = acc[k] * inv;
  }
  if (lane == 0) lse[(b * d.NH + h) * d.Tq + i] = m + logf(l);
}

// One warp per query row: D_i, dQ_i and (with a bias) the row of dS.
template <int R>
__global__ void backward_query_kernel(Dims d, Cols Q, Cols K, Cols V, Cols dQ, const float* dout,
                                      const float* lse, float* Dbuf, float* dS) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32, h = blockIdx.y,
                b = blockIdx.z;
  if (i >= d.Tq) return;
  const int lane = threadIdx.x % 32;
  const int64_t L = key_len(d, b), jend = d.causal ? min(i + 1, L) : L;
  const int64_t row = (b * d.NH + h) * d.Tq + i;
  float q[R], g[R], acc[R];
  load<R>(q, Q.at(b, i, h), d.hs);
  load<R>(g, dout + (b * d.Tq + i) * d.NH * d.hs + h * d.hs, d.hs);
  const float lse_i = lse[row];
  float D = 0.0f;
  for (int64_t j = 0; j < jend; ++j) {
    const float p = expf(score<R>(d, q, K.at(b, j, h), h, i, j) - lse_i);
    D += p * dot<R>(g, V.at(b, j, h), d.hs);
  }
#pragma unroll
  for (int k = 0; k < R; ++k) acc[k] = 0.0f;
  float* ds_row = dS ? dS + row * d.Tk : nullptr;
  for (int64_t j = 0; j < jend; ++j) {
    const float* kj = K.at(b, j, h);
    const float p = expf(score<R>(d, q, kj, h, i, j) - lse_i);
    const float ds = p * (dot<R>(g, V.at(b, j, h), d.hs) - D);
#pragma unroll
    for (int k = 0; k < R; ++k) {
      const int64_t c = lane + 32 * k;
      if (c < d.hs) acc[k] += ds * kj[c];
    }
    if (ds_row && lane == 0) ds_row[j] = ds;
  }
  if (ds_row)
    for (int64_t j = jend + lane; j < d.Tk; j += 32) ds_row[j] = 0.0f;
  float* dq = dQ.at(b, i, h);
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int64_t c = lane + 32 * k;
    if (c < d.hs) dq[c] = d.scale * acc[k];
  }
  if (lane == 0) Dbuf[row] = D;
}

// One warp per key row: dK_j and dV_j over the queries that see key j.
template <int R>
__global__ void backward_key_kernel(Dims d, Cols Q, Cols K, Cols V, Cols dK, Cols dV, const float* dout,
                                    const float* lse, const float* Dbuf) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32, h = blockIdx.y,
                b = blockIdx.z;
  if (j >= d.Tk) return;
  const int lane = threadIdx.x % 32;
  float kr[R], vr[R], dk[R], dv[R];
  load<R>(kr, K.at(b, j, h), d.hs);
  load<R>(vr, V.at(b, j, h), d.hs);
#pragma unroll
  for (int k = 0; k < R; ++k) dk[k] = dv[k] = 0.0f;
  if (j < key_len(d, b)) {  // padding keys are seen by no query: their gradients stay 0
    for (int64_t i = d.causal ? j : 0; i < d.Tq; ++i) {
      const int64_t row = (b * d.NH + h) * d.Tq + i;
      const float* qi = Q.at(b, i, h);
      const float* gi = dout + (b * d.Tq + i) * d.NH * d.hs + h * d.hs;
      // The same products and warp sums as the query kernel's score() and dot(), operands swapped
      // per lane (a * b == b * a exactly), so p and dP match it bit for bit.
      float s = d.scale * dot<R>(kr, qi, d.hs);
      if (d.bias) s += d.bias[(h * d.Tq + i) * d.Tk + j];
      const float p = expf(s - lse[row]);
      const float ds = p * (dot<R>(vr, gi, d.hs) - Dbuf[row]);
#pragma unroll
      for (int k = 0; k < R; ++k) {
        const int64_t c = lane + 32 * k;
        if (c < d.hs) {
          dv[k] += p * gi[c];
          dk[k] += ds * qi[c];
        }
      }
    }
  }
  float* pk = dK.at(b, j, h);
  float* pv = dV.at(b, j, h);
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int64_t c = lane + 32 * k;
    if (c < d.hs) {
      pk[c] = d.scale * dk[k];
      pv[c] = dv[k];
    }
  }
}

Cols cols(const ColumnBlock& c, int64_t B, int64_t T, int64_t hs, const char* what) {
  KERVAN_CHECK(
      c.t.ndim() == 3 && c.t.dim(0) == B && c.t.dim(1) == T && c.col >= 0 && c.col + c.width <= c.t.dim(2),
      std::string("attention ") + what + ": block [" + std::to_string(c.col) + ", +" +
          std::to_string(c.width) + ") of " + shape_str(c.t.shape()));
  return {c.t.data<float>() + c.col, c.t.dim(2), T, hs};
}

Dims check_dims(Backend& be, const ColumnBlock& q, const ColumnBlock& k, const ColumnBlock& v,
                const AttentionSpec& spec) {
  KERVAN_CHECK(q.t.ndim() == 3 && k.t.ndim() == 3, "attention takes [B, T, W] tensors");
  const int64_t B = q.t.dim(0), Tq = q.t.dim(1), Tk = k.t.dim(1), NH = spec.n_head;
  KERVAN_CHECK(NH > 0 && q.width % NH == 0 && k.width == q.width && v.width == q.width,
               "attention: q, k, v widths differ or do not split into heads");
  KERVAN_CHECK(!spec.causal || Tq == Tk, "causal attention needs as many keys as queries");
  KERVAN_CHECK(!spec.key_lengths || spec.key_lengths->numel() == B, "attention key_lengths shape");
  KERVAN_CHECK(!spec.bias || spec.bias->numel() == NH * Tq * Tk, "attention bias shape");
  const int64_t hs = q.width / NH;
  KERVAN_CHECK(hs <= kMaxHeadSize, "CUDA attention: head size " + std::to_string(hs) + " is over " +
                                       std::to_string(kMaxHeadSize));
  if (spec.key_lengths) {  // B integers: checked on the host, as the CPU twin does
    const std::vector<int32_t> L = be.to_host<int32_t>(*spec.key_lengths);
    for (int32_t l : L)
      KERVAN_CHECK(l >= 1 && l <= Tk,
                   "attention key length " + std::to_string(l) + " outside [1, " + std::to_string(Tk) + "]");
  }
  return {B,
          Tq,
          Tk,
          NH,
          hs,
          spec.scale,
          spec.causal,
          spec.key_lengths ? spec.key_lengths->data<int32_t>() : nullptr,
          spec.bias ? spec.bias->data<float>() : nullptr};
}

// The lanes' share of the head dimension: the smallest R in {1, 2, 4, 8} with hs <= 32 R.
int lanes_for(int64_t hs) {
  return hs <= 32 ? 1 : hs <= 64 ? 2 : hs <= 128 ? 4 : 8;
}

// The dispatch: precision BF16 runs the tiled tensor-core kernel (attention_flash.cu) for head
// sizes 64 and 128 without a bias, when every block's rows are 16-byte aligned (its loads are
// float4s). fp32 precision, other head sizes, T5's relative bias (whose dS the caller needs in
// full) and unaligned blocks keep this file's exact fp32 kernel.
bool use_flash(Precision precision, const Dims& d, std::initializer_list<Cols> blocks,
               std::initializer_list<const float*> rows) {
  if (precision != Precision::BF16 || d.bias || !flash_head_size(d.hs)) return false;
  auto aligned = [](const float* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  for (const Cols& c : blocks)
    if (!aligned(c.base) || c.ld % 4 != 0) return false;
  for (const float* r : rows)
    if (!aligned(r)) return false;
  return true;
}
FlashProblem flash_problem(const Dims& d) {
  return {d.B, d.Tq, d.Tk, d.NH, d.hs, d.scale, d.causal, d.key_lengths};
}
FlashCols flash_cols(const Cols& c) {
  return {c.base, c.ld};
}

std::string dims_str(const Dims& d) {
  return "B " + std::to_string(d.B) + ", heads " + std::to_string(d.NH) + ", Tq " + std::to_string(d.Tq) +
         ", Tk " + std::to_string(d.Tk) + ", head size " + std::to_string(d.hs);
}

}  // namespace

void CudaBackend::attention_forward(Tensor& out, Tensor& saved, const ColumnBlock& q, const ColumnBlock& k,
                                    const ColumnBlock& v, const AttentionSpec& spec) {
  const Dims d = check_dims(*this, q, k, v, spec);
  KERVAN_CHECK(out.numel() == d.B * d.Tq * d.NH * d.hs && saved.numel() == d.B * d.NH * d.Tq,
               "attention shapes: out " + shape_str(out.shape()) + ", saved " + shape_str(saved.shape()) +
                   " for " + dims_str(d));
  for (const Tensor* in : {&q.t, &k.t, &v.t})
    KERVAN_CHECK(!overlaps(out, *in) && !overlaps(saved, *in), "attention outputs alias an input");
  if (d.B * d.NH * d.Tq == 0) return;
  const Cols Q = cols(q, d.B, d.Tq, d.hs, "q"), K = cols(k, d.B, d.Tk, d.hs, "k"),
             V = cols(v, d.B, d.Tk, d.hs, "v");
  float *o = out.data<float>(), *lse = saved.data<float>();
  if (use_flash(precision_, d, {Q, K, V}, {o})) {
    flash_attention_forward(flash_problem(d), flash_cols(Q), flash_cols(K), flash_cols(V), o, lse, stream());
    return;
  }
  const dim3 grid(blocks_for(d.Tq, kWarps), static_cast<unsigned>(d.NH), static_cast<unsigned>(d.B));
  switch (lanes_for(d.hs)) {
    case 1:
      forward_kernel<1><<<grid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, o, lse);
      break;
    case 2:
      forward_kernel<2><<<grid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, o, lse);
      break;
    case 4:
      forward_kernel<4><<<grid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, o, lse);
      break;
    default:
      forward_kernel<8><<<grid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, o, lse);
  }
  check_launch("attention_forward", dims_str(d));
}

void CudaBackend::attention_backward(const ColumnBlock& dq, const ColumnBlock& dk, const ColumnBlock& dv,
                                     Tensor& dprobs, const Tensor& dout, const Tensor& out,
                                     const ColumnBlock& q, const ColumnBlock& k, const ColumnBlock& v,
                                     const Tensor& saved, const AttentionSpec& spec) {
  const Dims d = check_dims(*this, q, k, v, spec);
  KERVAN_CHECK(dq.width == q.width && dk.width == k.width && dv.width == v.width, "attention grad widths");
  KERVAN_CHECK(saved.numel() == d.B * d.NH * d.Tq && dout.numel() == d.B * d.Tq * d.NH * d.hs &&
                   out.numel() == dout.numel() && (!spec.bias || dprobs.numel() == d.B * d.NH * d.Tq * d.Tk),
               "attention grad shapes: saved " + shape_str(saved.shape()) + ", dprobs " +
                   shape_str(dprobs.shape()) + " for " + dims_str(d));
  for (const Tensor* g : {&dq.t, &dk.t, &dv.t})
    for (const Tensor* in :
         std::initializer_list<const Tensor*>{&q.t, &k.t, &v.t, &dout, &out, &saved, &dprobs})
      KERVAN_CHECK(!overlaps(*g, *in), "attention backward: a gradient aliases an input");
  if (d.B * d.NH * std::max(d.Tq, d.Tk) == 0) return;
  const Cols Q = cols(q, d.B, d.Tq, d.hs, "q"), K = cols(k, d.B, d.Tk, d.hs, "k"),
             V = cols(v, d.B, d.Tk, d.hs, "v");
  const Cols dQ = cols(dq, d.B, d.Tq, d.hs, "dq"), dK = cols(dk, d.B, d.Tk, d.hs, "dk"),
             dV = cols(dv, d.B, d.Tk, d.hs, "dv");
  Tensor D = empty({d.B, d.NH, d.Tq}, DType::F32);
  const float *g = dout.data<float>(), *lse = saved.data<float>();
  float* Dp = D.data<float>();
  if (use_flash(precision_, d, {Q, K, V, dQ, dK, dV}, {g, out.data<float>()})) {
    flash_attention_backward(flash_problem(d), flash_cols(Q), flash_cols(K), flash_cols(V), g,
                             out.data<float>(), lse, Dp, flash_cols(dQ), flash_cols(dK), flash_cols(dV),
                             stream());
    return;
  }
  float* dS = spec.bias ? dprobs.data<float>() : nullptr;
  const dim3 qgrid(blocks_for(d.Tq, kWarps), static_cast<unsigned>(d.NH), static_cast<unsigned>(d.B));
  const dim3 kgrid(blocks_for(d.Tk, kWarps), static_cast<unsigned>(d.NH), static_cast<unsigned>(d.B));
  switch (lanes_for(d.hs)) {
    case 1:
      backward_query_kernel<1><<<qgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dQ, g, lse, Dp, dS);
      break;
    case 2:
      backward_query_kernel<2><<<qgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dQ, g, lse, Dp, dS);
      break;
    case 4:
      backward_query_kernel<4><<<qgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dQ, g, lse, Dp, dS);
      break;
    default:
      backward_query_kernel<8><<<qgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dQ, g, lse, Dp, dS);
  }
  check_launch("attention_backward (queries)", dims_str(d));
  switch (lanes_for(d.hs)) {
    case 1:
      backward_key_kernel<1><<<kgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dK, dV, g, lse, Dp);
      break;
    case 2:
      backward_key_kernel<2><<<kgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dK, dV, g, lse, Dp);
      break;
    case 4:
      backward_key_kernel<4><<<kgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dK, dV, g, lse, Dp);
      break;
    default:
      backward_key_kernel<8><<<kgrid, 32 * kWarps, 0, stream()>>>(d, Q, K, V, dK, dV, g, lse, Dp);
  }
  check_launch("attention_backward (keys)", dims_str(d));
}

}  // namespace kervan
