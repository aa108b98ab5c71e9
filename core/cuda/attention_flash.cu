// Multi-head attention on the tensor cores, tiled flash-style: CudaBackend's attention when its
// precision is BF16 and the head size is 64 or 128 (attention.cu dispatches; everything else runs
// the exact fp32 kernel there). The math is attention.cu's and core/cpu/attention.cpp's:
//   S = scale Q K^T,  P = softmax(S) over the visible keys,  O = P V,  lse_i = m_i + log l_i
// with the matrix products' operands rounded to bf16 and accumulated in fp32; the softmax, its
// statistics, O and every gradient stay fp32 in memory (the same out and lse [B, NH, Tq] as the
// exact kernel, so backward and the memory plan are unchanged).
//
// Tiles. A block has 4 warps and owns a tile of 64 rows (queries in forward and in the dQ pass,
// keys in the dK/dV pass); warp w owns rows [16w, 16w + 16) of it and everything per row (scores,
// softmax, accumulators) is private to that warp, so the only block barriers are around loading
// the shared 64-row tiles of the other operand. Operands are read from global memory as fp32
// (16-byte loads, a row of a head is hs/4 of them, coalesced) and stored to shared memory as bf16.
// Rows past the end (t >= Tq, keys >= key_length) load as zeros and are masked, so any T works.
//   forward, one block per (query tile, head, batch), the longest causal rows first:
//     for each key tile that a row of the tile sees (causal: up to the diagonal; padding: up to
//     key_length):  S = Q K^T (WMMA), masked; per row m' = max(m, max_j s_ij),
//     P = exp(s - m') rounded to bf16, l = l e^(m - m') + sum_j p_ij;  O = O e^(m - m') + P V.
//     O lives in shared memory (fp32): a WMMA accumulator's element-to-row mapping is opaque, so
//     the warp rescales its rows of O there, loads them as the accumulator of the P V product and
//     stores them back. At the end out = O / l and lse = m + log l.
//   backward, recomputing P = exp(scale Q K^T - lse) from the saved lse, dS = P (dP - D):
//     dq pass, one block per query tile: first D_i = dO_i . O_i (fp32, from out), written for the
//       dk pass; then over key tiles S, dP = dO V^T (WMMA), dS (bf16), dQ += dS K in registers;
//       dQ = scale dQ.
//     dk pass, one block per key tile: over the query tiles that see it, S^T = K Q^T and
//       dP^T = V dO^T (WMMA), P^T and dS^T (bf16), dV += P^T dO and dK += dS^T Q in registers;
//       dK = scale dK. Keys past key_length get zeros.
//   Every output element has one writer and fixed reduction orders: no atomics, bit-identical
//   reruns. Seven 64x64xhs products per (query tile, key tile) in backward against five with
//   atomics on dQ (FlashAttention-2), the price of determinism.
//
// Why WMMA (nvcuda::wmma, bf16 16x16x16, fp32 accumulators) rather than mma.sync or sm_90a's
// wgmma: this code was written with no GPU at hand, and WMMA's opaque fragments, loaded from and
// stored to shared memory, need no hand-derived register layout that only a device could check.
// A wgmma version would gain: warpgroup-wide 64xNx16 products issued asynchronously from shared
// memory (no fragment loads through registers, S and P V overlapping the softmax), accumulators
// kept in registers with a known layout (O and dQ need no shared-memory round trip per tile, the
// softmax works on registers), and TMA loads double-buffered ahead of the math. FlashAttention-3
// reports up to 75% of an H100's bf16 peak that way. WMMA compiles to sm_80's mma.sync (HMMA),
// which on Hopper reaches only part of wgmma's rate (about two thirds by public measurements, a
// lead to check), and this kernel neither double-buffers its loads nor keeps O in registers.
//
// Shared memory (bytes; bf16 rows padded by 16 bytes and fp32 rows by 16 bytes, so that the 8
// rows of 16 bytes a fragment load reads at once fall in different banks), hs = 64 / 128, and
// nvcc 13.0's -Xptxas -v for sm_90 (sm_80: 142 / 112, 139 / 129, 168 / 255); no kernel spills or
// has a stack frame. Blocks per multiprocessor on sm_90 from its 228 KB of shared memory (1 KB
// reserved per block):
//   forward   Q, K, V bf16 64 x (hs+8); S fp32 64 x 68; P bf16 64 x 72; O fp32 64 x (hs+4):
//             71,680 / 112,640 B, 152 / 115 registers: 3 / 2 blocks
//   dq pass   Q, dO, K, V bf16; S, dP fp32; dS bf16; lse, D: 81,408 / 114,176 B, 140 / 137 registers:
//             2 / 2 blocks
//   dk pass   the dq pass's and P^T bf16: 90,624 / 123,392 B, 178 / 170 registers: 2 / 1 blocks
// The forward's __launch_bounds__ asks for 3 blocks (without it ptxas chose 128 registers and
// spilled 8 bytes at hs 64); the backward's ask for none (asking for 2 made ptxas take 255 and
// spill at hs 128).
//
// Cost at gpt2-small's shape (B 16, NH 12, T 1024, hs 64, causal), per layer:
//   FLOPs: one T x T x hs product over all heads is 2 B NH T^2 hs = 25.8 GFLOP, half of it under
//   the causal mask (12.9; the diagonal tiles computed whole add 6%). Forward 2 products: 25.8
//   GFLOP, 33 us at 790 TFLOP/s. Backward 7: 90.2 GFLOP, 114 us.
//   Bytes (each input read once, each output written once, fp32): forward q, k, v 151 MB + out
//   50 MB = 201 MB, 47 us at 4.3 TB/s; backward q, k, v, dout, out 252 MB + dq, dk, dv 151 MB =
//   403 MB, 94 us (the two passes read q, k, v and dout twice, from L2 at best: 604 MB, 140 us).
//   Floor: forward ~47 us (bandwidth: the fp32 operands), backward ~114-140 us; about 2 ms per
//   step for 12 layers, against ~15 ms for the step's 12 TFLOP at the same rate.
#include <cuda_bf16.h>
#include <mma.h>

#include <cfloat>
#include <string>

#include "core/cuda/attention_flash.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/reduce.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention_flash.cu needs sm_80 or newer (bf16 WMMA): set CMAKE_CUDA_ARCHITECTURES to 80 or above"
#endif

namespace kervan::cuda {

namespace {

using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;  // rows of a query or key tile
constexpr int kWarps = 4;  // warp w owns rows [16w, 16w + 16) of its block's tile
constexpr int kThreads = 32 * kWarps;
constexpr int kF = 16;           // WMMA fragment side
constexpr int kLds = kTile + 4;  // fp32 64-column tiles (S, dP): row pitch in floats
constexpr int kLdp = kTile + 8;  // bf16 64-column tiles (P, dS): row pitch in elements
static_assert(kWarps * kF == kTile, "each warp owns 16 rows of a tile");

using FragA = wmma::fragment<wmma::matrix_a, kF, kF, kF, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, kF, kF, kF, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, kF, kF, kF, bf16, wmma::col_major>;  // B = K^T from K's rows
using FragC = wmma::fragment<wmma::accumulator, kF, kF, kF, float>;

template <int HS>
struct Pitch {
  static constexpr int h = HS + 8;  // bf16 hs-column tiles (Q, K, V, dO): row pitch in elements
  static constexpr int o = HS + 4;  // fp32 hs-column tiles (O, staged gradients): row pitch in floats
};

// Shared memory is carved in 128-byte aligned pieces (WMMA needs 32-byte aligned fragment
// pointers; every pitch above keeps a 16-row, 16-column fragment's start 32-byte aligned).
template <class T>
__device__ __forceinline__ T* carve(unsigned char*& p, int n) {
  T* r = reinterpret_cast<T*>(p);
  p += (n * sizeof(T) + 127) / 128 * 128;
  return r;
}
// Sizes, for the host's launch and the kernels' debug asserts alike.
template <class T>
__host__ __device__ constexpr int carved(int n) {
  return (n * static_cast<int>(sizeof(T)) + 127) / 128 * 128;
}

template <int HS>
__host__ __device__ constexpr int forward_smem() {
  return 3 * carved<bf16>(kTile * Pitch<HS>::h) + carved<float>(kTile * kLds) + carved<bf16>(kTile * kLdp) +
         carved<float>(kTile * Pitch<HS>::o);
}
// Both backward passes: four bf16 operand tiles, the per-warp fp32 S and dP, dS (and the dk pass's
// P^T), lse and D of the query tile.
template <int HS>
__host__ __device__ constexpr int backward_smem(bool key_pass) {
  return 4 * carved<bf16>(kTile * Pitch<HS>::h) + 2 * carved<float>(kTile * kLds) +
         (key_pass ? 2 : 1) * carved<bf16>(kTile * kLdp) + 2 * carved<float>(kTile);
}
// The gradients are staged per warp in its S and dP rows (16 x (hs+4) floats fit in 2 x 16 x 68).
static_assert(kF * Pitch<128>::o <= 2 * kF * kLds, "staging fits the warp's S and dP rows");

__device__ __forceinline__ int64_t key_len(const FlashProblem& p, int64_t b) {
  return p.key_lengths ? p.key_lengths[b] : p.Tk;
}
__device__ __forceinline__ float* row_ptr(const FlashCols& c, int64_t T, int64_t b, int64_t t, int64_t h,
                                          int hs) {
  return c.base + (b * T + t) * c.ld + h * hs;
}

// Rows [t0, t0 + 64) of head h, batch b of a [B, T, ...] block into a bf16 tile; rows >= tend
// (<= T) are zeros. All threads of the block take part, 8 16-byte loads in flight per thread (32
// registers; more would crowd the accumulators).
template <int HS>
__device__ __forceinline__ void load_tile(bf16* dst, const FlashCols& src, int64_t T, int64_t b, int64_t h,
                                          int64_t t0, int64_t tend) {
  constexpr int kVecs = HS / 4, kBatch = 8, kPer = kTile * kVecs / kThreads;
  static_assert(kPer % kBatch == 0, "whole batches of float4s per thread");
  KERVAN_DEVICE_ASSERT(tend <= T);
#pragma unroll 1
  for (int it0 = 0; it0 < kPer; it0 += kBatch) {
    float4 x[kBatch];
#pragma unroll
    for (int it = 0; it < kBatch; ++it) {
      const int e = (it0 + it) * kThreads + threadIdx.x, r = e / kVecs, c = e % kVecs * 4;
      x[it] = t0 + r < tend ? __ldg(reinterpret_cast<const float4*>(row_ptr(src, T, b, t0 + r, h, HS) + c))
                            : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int it = 0; it < kBatch; ++it) {
      const int e = (it0 + it) * kThreads + threadIdx.x, r = e / kVecs, c = e % kVecs * 4;
      const __nv_bfloat162 lo = __floats2bfloat162_rn(x[it].x, x[it].y),
                           hi = __floats2bfloat162_rn(x[it].z, x[it].w);
      uint2 packed;
      packed.x = *reinterpret_cast<const unsigned*>(&lo);
      packed.y = *reinterpret_cast<const unsigned*>(&hi);
      *reinterpret_cast<uint2*>(dst + r * Pitch<HS>::h + c) = packed;
    }
  }
}

// out = A B^T over the hs columns for the warp's 16 rows of A against the 64 rows of B, into an
// fp32 16 x 64 tile (pitch kLds): A, B bf16 tiles of pitch HS + 8.
template <int HS>
__device__ __forceinline__ void rows_times_tile_t(float* out, const bf16* a_rows, const bf16* b_tile) {
#pragma unroll
  for (int n = 0; n < kTile / kF; ++n) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < HS / kF; ++kk) {
      FragA a;
      FragBt bt;
      wmma::load_matrix_sync(a, a_rows + kk * kF, Pitch<HS>::h);
      wmma::load_matrix_sync(bt, b_tile + n * kF * Pitch<HS>::h + kk * kF, Pitch<HS>::h);
      wmma::mma_sync(acc, a, bt, acc);
    }
    wmma::store_matrix_sync(out + n * kF, acc, kLds, wmma::mem_row_major);
  }
}

// acc[n] += A B for the warp's 16 x 64 bf16 rows A (pitch kLdp) and a 64 x hs bf16 tile B.
template <int HS>
__device__ __forceinline__ void accumulate_rows_times_tile(FragC (&acc)[HS / kF], const bf16* a_rows,
                                                           const bf16* b_tile) {
#pragma unroll
  for (int kk = 0; kk < kTile / kF; ++kk) {
    FragA a;
    wmma::load_matrix_sync(a, a_rows + kk * kF, kLdp);
#pragma unroll
    for (int n = 0; n < HS / kF; ++n) {
      FragB bm;
      wmma::load_matrix_sync(bm, b_tile + kk * kF * Pitch<HS>::h + n * kF, Pitch<HS>::h);
      wmma::mma_sync(acc[n], a, bm, acc[n]);
    }
  }
}

// Writes scale * acc (the warp's 16 rows x hs) to rows t0 + r < tend of a gradient block, staged
// through `stage` (16 x (hs+4) floats of the warp's own shared memory).
template <int HS>
__device__ __forceinline__ void write_rows(const FlashCols& dst, int64_t T, int64_t b, int64_t h, int64_t t0,
                                           int64_t tend, FragC (&acc)[HS / kF], float scale, float* stage) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int n = 0; n < HS / kF; ++n) {
#pragma unroll
    for (int e = 0; e < acc[n].num_elements; ++e) acc[n].x[e] *= scale;  // the same for every element
    wmma::store_matrix_sync(stage + n * kF, acc[n], Pitch<HS>::o, wmma::mem_row_major);
  }
  __syncwarp();
  for (int r = 0; r < kF; ++r) {
    if (t0 + r >= tend) break;
    float* row = row_ptr(dst, T, b, t0 + r, h, HS);
    for (int c = lane * 4; c < HS; c += 128)
      *reinterpret_cast<float4*>(row + c) = *reinterpret_cast<const float4*>(stage + r * Pitch<HS>::o + c);
  }
}

template <int HS>
__global__ void __launch_bounds__(kThreads, 3)
    flash_forward_kernel(FlashProblem p, FlashCols Q, FlashCols K, FlashCols V, float* out, float* lse) {
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sp = smem;
  bf16* q_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* k_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* v_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  float* s_s = carve<float>(sp, kTile * kLds);
  bf16* p_s = carve<bf16>(sp, kTile * kLdp);
  float* o_s = carve<float>(sp, kTile * Pitch<HS>::o);
  KERVAN_DEVICE_ASSERT(blockDim.x == kThreads && sp - smem == forward_smem<HS>());

  const int64_t q0 = (gridDim.x - 1 - blockIdx.x) * static_cast<int64_t>(kTile);  // longest rows first
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r0 = warp * kF;
  const int64_t L = key_len(p, b), kend = p.causal ? min(L, q0 + kTile) : L;

  load_tile<HS>(q_s, Q, p.Tq, b, h, q0, p.Tq);
  for (int e = threadIdx.x; e < kTile * Pitch<HS>::o; e += kThreads) o_s[e] = 0.0f;
  __syncthreads();
  FragA qf[HS / kF];
#pragma unroll
  for (int kk = 0; kk < HS / kF; ++kk)
    wmma::load_matrix_sync(qf[kk], q_s + r0 * Pitch<HS>::h + kk * kF, Pitch<HS>::h);
  // Lane r holds row r0 + r's running max and sum.
  float m_lane = -INFINITY, l_lane = 0.0f;
  float* s_w = s_s + r0 * kLds;
  bf16* p_w = p_s + r0 * kLdp;
  float* o_w = o_s + r0 * Pitch<HS>::o;

  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();  // every warp is done with the previous K and V
    load_tile<HS>(k_s, K, p.Tk, b, h, k0, L);
    load_tile<HS>(v_s, V, p.Tk, b, h, k0, L);
    __syncthreads();
#pragma unroll
    for (int n = 0; n < kTile / kF; ++n) {
      FragC acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < HS / kF; ++kk) {
        FragBt kt;
        wmma::load_matrix_sync(kt, k_s + n * kF * Pitch<HS>::h + kk * kF, Pitch<HS>::h);
        wmma::mma_sync(acc, qf[kk], kt, acc);
      }
      wmma::store_matrix_sync(s_w + n * kF, acc, kLds, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax, one row at a time, the lanes across the 64 keys.
    for (int r = 0; r < kF; ++r) {
      const int64_t i = q0 + r0 + r, jend = p.causal ? min(i + 1, L) : L;
      float s[kTile / 32], mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < kTile / 32; ++c) {
        const int col = lane + 32 * c;
        s[c] = k0 + col < jend ? p.scale * s_w[r * kLds + col] : -INFINITY;
        mx = fmaxf(mx, s[c]);
      }
      const float m_old = __shfl_sync(0xffffffffu, m_lane, r), m_new = fmaxf(m_old, warp_max(mx));
      const float m_ref = m_new == -INFINITY ? 0.0f : m_new;  // a row that has seen no key yet
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < kTile / 32; ++c) {
        const float e = expf(s[c] - m_ref);  // 0 for masked keys
        p_w[r * kLdp + lane + 32 * c] = __float2bfloat16(e);
        sum += e;
      }
      sum = warp_sum(sum);
      const float corr = expf(m_old - m_ref);
      for (int c = lane; c < HS; c += 32) o_w[r * Pitch<HS>::o + c] *= corr;
      if (lane == r) {
        m_lane = m_new;
        l_lane = l_lane * corr + sum;
      }
    }
    __syncwarp();
    FragA pf[kTile / kF];
#pragma unroll
    for (int kk = 0; kk < kTile / kF; ++kk) wmma::load_matrix_sync(pf[kk], p_w + kk * kF, kLdp);
#pragma unroll
    for (int n = 0; n < HS / kF; ++n) {
      FragC acc;
      wmma::load_matrix_sync(acc, o_w + n * kF, Pitch<HS>::o, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kTile / kF; ++kk) {
        FragB vf;
        wmma::load_matrix_sync(vf, v_s + kk * kF * Pitch<HS>::h + n * kF, Pitch<HS>::h);
        wmma::mma_sync(acc, pf[kk], vf, acc);
      }
      wmma::store_matrix_sync(o_w + n * kF, acc, Pitch<HS>::o, wmma::mem_row_major);
    }
  }
  __syncwarp();
  for (int r = 0; r < kF; ++r) {
    const float m = __shfl_sync(0xffffffffu, m_lane, r), l = __shfl_sync(0xffffffffu, l_lane, r);
    const int64_t i = q0 + r0 + r;
    if (i >= p.Tq) break;            // the same for the whole warp
    KERVAN_DEVICE_ASSERT(l > 0.0f);  // key 0 is visible to every row
    const float inv = 1.0f / l;
    float* o = out + (b * p.Tq + i) * p.NH * HS + h * HS;
    for (int c = lane * 4; c < HS; c += 128) {
      float4 x = *reinterpret_cast<const float4*>(o_w + r * Pitch<HS>::o + c);
      x.x *= inv;
      x.y *= inv;
      x.z *= inv;
      x.w *= inv;
      *reinterpret_cast<float4*>(o + c) = x;
    }
    if (lane == 0) lse[(b * p.NH + h) * p.Tq + i] = m + logf(l);
  }
}

// The dq pass: D for the tile's rows, then dQ over the key tiles its rows see.
template <int HS>
__global__ void __launch_bounds__(kThreads)
    flash_backward_query_kernel(FlashProblem p, FlashCols Q, FlashCols K, FlashCols V, FlashCols dO,
                                const float* out, const float* lse, float* D, FlashCols dQ) {
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sp = smem;
  bf16* q_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* g_s = carve<bf16>(sp, kTile * Pitch<HS>::h);  // dO
  bf16* k_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* v_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  float* s_s = carve<float>(sp, 2 * kTile * kLds);  // per warp: S rows, then dP rows
  bf16* ds_s = carve<bf16>(sp, kTile * kLdp);
  float* lse_s = carve<float>(sp, kTile);
  float* d_s = carve<float>(sp, kTile);
  KERVAN_DEVICE_ASSERT(blockDim.x == kThreads && sp - smem == backward_smem<HS>(false));

  const int64_t q0 = (gridDim.x - 1 - blockIdx.x) * static_cast<int64_t>(kTile);
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r0 = warp * kF;
  const int64_t L = key_len(p, b), kend = p.causal ? min(L, q0 + kTile) : L;

  load_tile<HS>(q_s, Q, p.Tq, b, h, q0, p.Tq);
  load_tile<HS>(g_s, dO, p.Tq, b, h, q0, p.Tq);
  // D_i = dO_i . O_i in fp32, one row at a time per warp (fixed order: deterministic).
  for (int r = 0; r < kF; ++r) {
    const int64_t i = q0 + r0 + r;
    float dot = 0.0f, l = 0.0f;
    if (i < p.Tq) {
      const float* g = row_ptr(dO, p.Tq, b, i, h, HS);
      const float* o = out + (b * p.Tq + i) * p.NH * HS + h * HS;
      for (int c = lane; c < HS; c += 32) dot += g[c] * o[c];
      l = lse[(b * p.NH + h) * p.Tq + i];
    }
    dot = warp_sum(dot);
    if (lane == 0) {
      d_s[r0 + r] = dot;
      lse_s[r0 + r] = l;
      if (i < p.Tq) D[(b * p.NH + h) * p.Tq + i] = dot;
    }
  }
  __syncthreads();
  FragC dq[HS / kF];
#pragma unroll
  for (int n = 0; n < HS / kF; ++n) wmma::fill_fragment(dq[n], 0.0f);
  float* s_w = s_s + warp * 2 * kF * kLds;
  float* dp_w = s_w + kF * kLds;
  bf16* ds_w = ds_s + r0 * kLdp;

  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();
    load_tile<HS>(k_s, K, p.Tk, b, h, k0, L);
    load_tile<HS>(v_s, V, p.Tk, b, h, k0, L);
    __syncthreads();
    rows_times_tile_t<HS>(s_w, q_s + r0 * Pitch<HS>::h, k_s);   // S = Q K^T
    rows_times_tile_t<HS>(dp_w, g_s + r0 * Pitch<HS>::h, v_s);  // dP = dO V^T
    __syncwarp();
    for (int r = 0; r < kF; ++r) {
      const int64_t i = q0 + r0 + r, jend = i < p.Tq ? (p.causal ? min(i + 1, L) : L) : 0;
      const float l = lse_s[r0 + r], dd = d_s[r0 + r];
#pragma unroll
      for (int c = 0; c < kTile / 32; ++c) {
        const int col = lane + 32 * c;
        float ds = 0.0f;
        if (k0 + col < jend) {
          const float pr = expf(p.scale * s_w[r * kLds + col] - l);
          ds = pr * (dp_w[r * kLds + col] - dd);
        }
        ds_w[r * kLdp + col] = __float2bfloat16(ds);
      }
    }
    __syncwarp();
    accumulate_rows_times_tile<HS>(dq, ds_w, k_s);
  }
  __syncwarp();
  write_rows<HS>(dQ, p.Tq, b, h, q0 + r0, p.Tq, dq, p.scale, s_w);
}

// The dk pass: dK and dV of the tile's keys over the query tiles that see them.
template <int HS>
__global__ void __launch_bounds__(kThreads)
    flash_backward_key_kernel(FlashProblem p, FlashCols Q, FlashCols K, FlashCols V, FlashCols dO,
                              const float* lse, const float* D, FlashCols dK, FlashCols dV) {
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sp = smem;
  bf16* k_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* v_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* q_s = carve<bf16>(sp, kTile * Pitch<HS>::h);
  bf16* g_s = carve<bf16>(sp, kTile * Pitch<HS>::h);  // dO
  float* s_s = carve<float>(sp, 2 * kTile * kLds);    // per warp: S^T rows, then dP^T rows
  bf16* pt_s = carve<bf16>(sp, kTile * kLdp);
  bf16* dst_s = carve<bf16>(sp, kTile * kLdp);
  float* lse_s = carve<float>(sp, kTile);
  float* d_s = carve<float>(sp, kTile);
  KERVAN_DEVICE_ASSERT(blockDim.x == kThreads && sp - smem == backward_smem<HS>(true));

  const int64_t k0 = blockIdx.x * static_cast<int64_t>(kTile);
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r0 = warp * kF;
  const int64_t L = key_len(p, b);

  load_tile<HS>(k_s, K, p.Tk, b, h, k0, L);
  load_tile<HS>(v_s, V, p.Tk, b, h, k0, L);
  FragC dk[HS / kF], dv[HS / kF];
#pragma unroll
  for (int n = 0; n < HS / kF; ++n) {
    wmma::fill_fragment(dk[n], 0.0f);
    wmma::fill_fragment(dv[n], 0.0f);
  }
  float* s_w = s_s + warp * 2 * kF * kLds;
  float* dp_w = s_w + kF * kLds;
  bf16* pt_w = pt_s + r0 * kLdp;
  bf16* dst_w = dst_s + r0 * kLdp;
  const bf16* k_w = k_s + r0 * Pitch<HS>::h;
  const bf16* v_w = v_s + r0 * Pitch<HS>::h;

  // Causal: query i sees key j only if i >= j, so the first query tile is the key tile's own.
  for (int64_t q0 = p.causal ? k0 : 0; k0 < L && q0 < p.Tq; q0 += kTile) {
    __syncthreads();  // K, V are loaded; every warp is done with the previous Q, dO
    load_tile<HS>(q_s, Q, p.Tq, b, h, q0, p.Tq);
    load_tile<HS>(g_s, dO, p.Tq, b, h, q0, p.Tq);
    if (threadIdx.x < kTile) {
      const int64_t i = q0 + threadIdx.x;
      lse_s[threadIdx.x] = i < p.Tq ? lse[(b * p.NH + h) * p.Tq + i] : 0.0f;
      d_s[threadIdx.x] = i < p.Tq ? D[(b * p.NH + h) * p.Tq + i] : 0.0f;
    }
    __syncthreads();
    rows_times_tile_t<HS>(s_w, k_w, q_s);   // S^T = K Q^T
    rows_times_tile_t<HS>(dp_w, v_w, g_s);  // dP^T = V dO^T
    __syncwarp();
    for (int r = 0; r < kF; ++r) {
      const int64_t j = k0 + r0 + r;
#pragma unroll
      for (int c = 0; c < kTile / 32; ++c) {
        const int col = lane + 32 * c;
        const int64_t i = q0 + col;
        float pr = 0.0f, ds = 0.0f;
        if (j < L && i < p.Tq && (!p.causal || j <= i)) {
          pr = expf(p.scale * s_w[r * kLds + col] - lse_s[col]);
          ds = pr * (dp_w[r * kLds + col] - d_s[col]);
        }
        pt_w[r * kLdp + col] = __float2bfloat16(pr);
        dst_w[r * kLdp + col] = __float2bfloat16(ds);
      }
    }
    __syncwarp();
    accumulate_rows_times_tile<HS>(dv, pt_w, g_s);   // dV += P^T dO
    accumulate_rows_times_tile<HS>(dk, dst_w, q_s);  // dK += dS^T Q
  }
  __syncwarp();
  write_rows<HS>(dV, p.Tk, b, h, k0 + r0, p.Tk, dv, 1.0f, s_w);
  __syncwarp();
  write_rows<HS>(dK, p.Tk, b, h, k0 + r0, p.Tk, dk, p.scale, s_w);
}

std::string problem_str(const FlashProblem& p) {
  return "B " + std::to_string(p.B) + ", heads " + std::to_string(p.NH) + ", Tq " + std::to_string(p.Tq) +
         ", Tk " + std::to_string(p.Tk) + ", head size " + std::to_string(p.hs) + " (bf16 tiles)";
}

unsigned tiles(int64_t T) {
  return static_cast<unsigned>((T + kTile - 1) / kTile);
}

template <class Kernel>
void allow_smem(Kernel kernel, int bytes, const FlashProblem& p) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "cudaFuncSetAttribute (dynamic shared memory)",
        std::to_string(bytes) + " bytes for " + problem_str(p));
}

template <int HS>
void forward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, float* out, float* lse,
             cudaStream_t stream) {
  constexpr int smem = forward_smem<HS>();
  allow_smem(flash_forward_kernel<HS>, smem, p);
  const dim3 grid(tiles(p.Tq), static_cast<unsigned>(p.NH), static_cast<unsigned>(p.B));
  flash_forward_kernel<HS><<<grid, kThreads, smem, stream>>>(p, q, k, v, out, lse);
  check_launch("attention_forward (flash)", problem_str(p));
}

template <int HS>
void backward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, FlashCols dout, const float* out,
              const float* lse, float* D, FlashCols dq, FlashCols dk, FlashCols dv, cudaStream_t stream) {
  constexpr int qsmem = backward_smem<HS>(false), ksmem = backward_smem<HS>(true);
  allow_smem(flash_backward_query_kernel<HS>, qsmem, p);
  allow_smem(flash_backward_key_kernel<HS>, ksmem, p);
  const unsigned NH = static_cast<unsigned>(p.NH), B = static_cast<unsigned>(p.B);
  flash_backward_query_kernel<HS>
      <<<dim3(tiles(p.Tq), NH, B), kThreads, qsmem, stream>>>(p, q, k, v, dout, out, lse, D, dq);
  check_launch("attention_backward (flash, queries)", problem_str(p));
  flash_backward_key_kernel<HS>
      <<<dim3(tiles(p.Tk), NH, B), kThreads, ksmem, stream>>>(p, q, k, v, dout, lse, D, dk, dv);
  check_launch("attention_backward (flash, keys)", problem_str(p));
}

}  // namespace

void flash_attention_forward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, float* out,
                             float* lse, cudaStream_t stream) {
  if (p.hs == 64)
    forward<64>(p, q, k, v, out, lse, stream);
  else
    forward<128>(p, q, k, v, out, lse, stream);
}

void flash_attention_backward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, const float* dout,
                              const float* out, const float* lse, float* D, FlashCols dq, FlashCols dk,
                              FlashCols dv, cudaStream_t stream) {
  const FlashCols g{const_cast<float*>(dout), p.NH * p.hs};
  if (p.hs == 64)
    backward<64>(p, q, k, v, g, out, lse, D, dq, dk, dv, stream);
  else
    backward<128>(p, q, k, v, g, out, lse, D, dq, dk, dv, stream);
}

}  // namespace kervan::cuda
