#pragma once
// Deterministic column sums on the GPU:  out[c] += sum_n f(n, c)  for n in [0, N), c in [0, C).
// Bias, LayerNorm and position-embedding gradients are such sums over many rows. Two passes with
// no atomics, so the result is bit-identical run to run: pass 1 splits the rows into a fixed
// number of chunks (a function of N alone, never of the device) and writes one partial sum per
// (chunk, column); pass 2 adds the chunks in order. Consecutive threads take consecutive columns,
// so every row is read coalesced.
#include "core/cuda/backend_impl.h"

namespace kervan::cuda {

inline int column_sum_chunks(int64_t N) {
  const int64_t c = (N + 127) / 128;
  return static_cast<int>(c < 1 ? 1 : c > 64 ? 64 : c);
}

template <typename F>
__global__ void column_sum_partial(float* partial, int64_t N, int64_t C, int chunks, F f) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t per = (N + chunks - 1) / chunks, n0 = chunk * per, n1 = n0 + per < N ? n0 + per : N;
  float s = 0.0f;
  for (int64_t n = n0; n < n1; ++n) s += f(n, c);
  partial[chunk * C + c] = s;
}

__global__ void column_sum_finish(float* out, const float* partial, int64_t C, int chunks);

// out[c] += sum_n f(n, c). `what` names the kernel in errors.
template <typename F>
void column_sum(CudaBackend& be, float* out, int64_t N, int64_t C, F f, const char* what) {
  if (C == 0) return;
  const int chunks = column_sum_chunks(N);
  Tensor partial = be.empty({chunks, C}, DType::F32);
  const dim3 grid(blocks_for(C, 256), chunks);
  column_sum_partial<<<grid, 256, 0, be.stream()>>>(partial.data<float>(), N, C, chunks, f);
  check_launch(what, "[" + std::to_string(N) + ", " + std::to_string(C) + "] (partial sums)");
  column_sum_finish<<<blocks_for(C, 256), 256, 0, be.stream()>>>(out, partial.data<float>(), C, chunks);
  check_launch(what, "[" + std::to_string(N) + ", " + std::to_string(C) + "] (final sums)");
}

}  // namespace kervan::cuda
