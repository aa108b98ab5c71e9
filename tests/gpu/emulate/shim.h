// Host emulation of the CUDA pieces attention_flash.cu uses: one block at a time, its 128 threads
// as std::threads, __syncthreads / __syncwarp as barriers, shuffles through an exchange buffer,
// WMMA fragments as full 16x16 copies per thread (stores by lane 0 only).
#pragma once
#include <barrier>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx, gridDim, blockDim;
inline std::barrier<>* g_block;
inline std::barrier<>* g_warp[4];
inline float g_x[4][32];

inline void __syncthreads() {
  g_block->arrive_and_wait();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  g_warp[threadIdx.x / 32]->arrive_and_wait();
}
inline float __shfl_sync(unsigned, float v, int src) {
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  g_x[w][l] = v;
  __syncwarp();
  const float r = g_x[w][src];
  __syncwarp();
  return r;
}
inline float __shfl_xor_sync(unsigned, float v, int m) {
  const int l = threadIdx.x % 32;
  const int w = threadIdx.x / 32;
  g_x[w][l] = v;
  __syncwarp();
  const float r = g_x[w][l ^ m];
  __syncwarp();
  return r;
}

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) {
  return {a, b, c, d};
}
struct alignas(8) uint2 {
  unsigned x, y;
};
inline float4 __ldg(const float4* p) {
  assert(reinterpret_cast<uintptr_t>(p) % 16 == 0);
  return *p;
}
template <class T>
inline T min(T a, T b) {
  return a < b ? a : b;
}

struct __nv_bfloat16 {
  uint16_t bits;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<uint16_t>(u >> 16)};
}
inline float bf2f(__nv_bfloat16 b) {
  uint32_t u = static_cast<uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16(a), __float2bfloat16(b)};
}

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int num_elements = 256;
  float x[256];
};
template <class Use, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p,
                             unsigned ldm) {
  assert(reinterpret_cast<uintptr_t>(p) % 32 == 0 && ldm % 8 == 0);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c)
      f.x[r * 16 + c] = bf2f(std::is_same_v<Layout, row_major> ? p[r * ldm + c] : p[c * ldm + r]);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm,
                             layout_t l) {
  assert(reinterpret_cast<uintptr_t>(p) % 32 == 0 && ldm % 4 == 0 && l == mem_row_major);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) f.x[r * 16 + c] = p[r * ldm + c];
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm,
                              layout_t l) {
  assert(reinterpret_cast<uintptr_t>(p) % 32 == 0 && ldm % 4 == 0 && l == mem_row_major);
  // The warp-wide store runs after the warp-wide loads before it: a lane only ever overwrites
  // elements it loaded itself, which full copies cannot express, so wait for the warp here.
  __syncwarp();
  if (threadIdx.x % 32 != 0) return;
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) p[r * ldm + c] = f.x[r * 16 + c];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float v) {
  for (float& e : f.x) e = v;
}
template <class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
  float out[256];
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 16; ++n) {
      float s = c.x[r * 16 + n];
      for (int k = 0; k < 16; ++k) s += a.x[r * 16 + k] * b.x[k * 16 + n];
      out[r * 16 + n] = s;
    }
  std::memcpy(d.x, out, sizeof out);
}
}  // namespace nvcuda::wmma

// Runs kernel(args...) over a grid, one block at a time.
template <class F>
void launch(dim3 grid, F kernel) {
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::barrier<> block(128);
        std::unique_ptr<std::barrier<>> warps[4];
        for (int w = 0; w < 4; ++w) {
          warps[w] = std::make_unique<std::barrier<>>(32);
          g_warp[w] = warps[w].get();
        }
        g_block = &block;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < 128; ++t)
          threads.emplace_back([=] {
            threadIdx = {t, 0, 0};
            blockIdx = {x, y, z};
            gridDim = grid;
            blockDim = {128, 1, 1};
            kernel();
          });
        for (auto& th : threads) th.join();
      }
}
