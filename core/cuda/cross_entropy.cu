// Softmax + cross-entropy over the vocabulary, one block per row, the probabilities never stored
// (twins of core/cpu/cross_entropy.cpp and vocab_parallel_cross_entropy.cpp):
//   loss_n = log(sum_j exp(z_nj - m_n)) + m_n - z_n,target    (m_n = max_j z_nj, j < vocab; target < 0: 0)
//   dz_nj  = dloss * (exp(z_nj - m_n) / sum - [j == target])   (0 for padding columns and ignored rows)
// Vocabulary-parallel pieces (math in core/backend.h): per-row max and exp-sum over this rank's
// `valid` columns, the target logit if it is in this shard, and the gradient from combined stats.
#include "core/cuda/backend_impl.h"
#include "core/cuda/reduce.cuh"

namespace kervan {

using namespace cuda;

namespace {

constexpr int kThreads = 256;

struct RowStats {
  float max, sum;
};

__device__ RowStats row_stats(const float* z, int64_t valid, float* sh) {
  float m = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) m = fmaxf(m, z[j]);
  m = block_max(m, sh);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) s += expf(z[j] - m);
  return {m, block_sum(s, sh)};
}

// dz over the row's Vp columns; target outside [0, valid) lives elsewhere (or is ignored when ignore).
__device__ void grad_row(float* dz, const float* z, int64_t valid, int64_t cols, float max, float sum,
                         int64_t target, bool ignore, float dloss) {
  const float scale = dloss / sum;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float d = 0.0f;
    if (!ignore && j < valid) d = expf(z[j] - max) * scale - (j == target ? dloss : 0.0f);
    dz[j] = d;
  }
}

__global__ void ce_forward_kernel(float* losses, const float* logits, const int32_t* targets, int64_t Vp,
                                  int64_t vocab) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const int32_t t = targets[n];
  if (t < 0) {  // uniform over the block: no thread reaches a barrier alone
    if (threadIdx.x == 0) losses[n] = 0.0f;
    return;
  }
  KERVAN_DEVICE_ASSERT(t < vocab);
  const float* z = logits + n * Vp;
  const RowStats st = row_stats(z, vocab, sh);
  if (threadIdx.x == 0) losses[n] = logf(st.sum) + st.max - z[t];
}

// dlogits may alias logits: every thread reads its columns' z only before writing them, and the
// row statistics are complete (block_sum ends in a barrier) before any write.
__global__ void ce_backward_kernel(float* dlogits, const float* logits, const int32_t* targets, int64_t Vp,
                                   int64_t vocab, float dloss) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const int32_t t = targets[n];
  const float* z = logits + n * Vp;
  RowStats st{0.0f, 1.0f};
  if (t >= 0) st = row_stats(z, vocab, sh);
  grad_row(dlogits + n * Vp, z, vocab, Vp, st.max, st.sum, t, t < 0, dloss);
}

__global__ void vp_max_kernel(float* mx, const float* logits, int64_t Vl, int64_t valid) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  float m = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) m = fmaxf(m, logits[n * Vl + j]);
  m = block_max(m, sh);
  if (threadIdx.x == 0) mx[n] = m;
}

__global__ void vp_exp_sum_kernel(float* sum, float* tgt, const float* logits, const float* mx,
                                  const int32_t* targets, int64_t Vl, int64_t col0, int64_t valid) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const float* z = logits + n * Vl;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) s += expf(z[j] - mx[n]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) {
    sum[n] = s;
    const int64_t j = static_cast<int64_t>(targets[n]) - col0;
    tgt[n] = targets[n] >= 0 && j >= 0 && j < valid ? z[j] : 0.0f;
  }
}

__global__ void vp_backward_kernel(float* dlogits, const float* logits, const float* mx, const float* sum,
                                   const int32_t* targets, int64_t Vl, int64_t col0, int64_t valid,
                                   float dloss) {
  const int64_t n = blockIdx.x;
  const int32_t t = targets[n];
  grad_row(dlogits + n * Vl, logits + n * Vl, valid, Vl, mx[n], sum[n], static_cast<int64_t>(t) - col0, t < 0,
           dloss);
}

}  // namespace

void CudaBackend::cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets,
                                        int64_t vocab) {
  const auto [N, Vp] = rows_cols(logits);
  KERVAN_CHECK(vocab <= Vp && targets.numel() == N && losses.numel() == N, "cross-entropy shapes");
  if (N == 0) return;
  ce_forward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      losses.data<float>(), logits.data<float>(), targets.data<int32_t>(), Vp, vocab);
  check_launch("cross_entropy_forward",
               "logits " + shape_str(logits.shape()) + ", vocab " + std::to_string(vocab));
}

void CudaBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                         int64_t vocab, float dloss) {
  const auto [N, Vp] = rows_cols(logits);
  KERVAN_CHECK(dlogits.numel() == logits.numel(), "cross-entropy grad shape");
  if (N == 0) return;
  ce_backward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      dlogits.data<float>(), logits.data<float>(), targets.data<int32_t>(), Vp, vocab, dloss);
  check_launch("cross_entropy_backward",
               "logits " + shape_str(logits.shape()) + ", vocab " + std::to_string(vocab));
}

void CudaBackend::vocab_parallel_row_max(Tensor& mx, const Tensor& logits, int64_t valid) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(valid >= 0 && valid <= Vl && mx.numel() == N, "vocab-parallel max shapes");
  if (N == 0) return;
  vp_max_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(mx.data<float>(), logits.data<float>(),
                                                                     Vl, valid);
  check_launch("vocab_parallel_row_max", shape_str(logits.shape()));
}

void CudaBackend::vocab_parallel_exp_sum_target(Tensor& sum, Tensor& tgt, const Tensor& logits,
                                                const Tensor& mx, const Tensor& targets, int64_t col0,
                                                int64_t valid) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(sum.numel() == N && tgt.numel() == N && mx.numel() == N && targets.numel() == N,
               "vocab-parallel cross-entropy shapes");
  if (N == 0) return;
  vp_exp_sum_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      sum.data<float>(), tgt.data<float>(), logits.data<float>(), mx.data<float>(), targets.data<int32_t>(),
      Vl, col0, valid);
  check_launch("vocab_parallel_exp_sum_target", shape_str(logits.shape()));
}

void CudaBackend::vocab_parallel_cross_entropy_backward(Tensor& dlogits, const Tensor& logits,
                                                        const Tensor& mx, const Tensor& sum,
                                                        const Tensor& targets, int64_t col0, int64_t valid,
                                                        float dloss) {
  const auto [N, Vl] = rows_cols(logits);
  KERVAN_CHECK(dlogits.numel() == logits.numel(), "vocab-parallel cross-entropy grad shape");
  if (N == 0) return;
  vp_backward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      dlogits.data<float>(), logits.data<float>(), mx.data<float>(), sum.data<float>(),
      targets.data<int32_t>(), Vl, col0, valid, dloss);
  check_launch("vocab_parallel_cross_entropy_backward", shape_str(logits.shape()));
}

}  // namespace kervan
