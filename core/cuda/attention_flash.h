#pragma once
// The tiled tensor-core attention (attention_flash.cu), for CudaBackend's attention when its
// precision is BF16: the interface between attention.cu, which checks shapes and dispatches, and
// the kernels. Only core/cuda includes this.
#include <cuda_runtime.h>

#include <cstdint>

namespace kervan::cuda {

// Head h of batch b of a column block of a [B, T, ld] fp32 tensor: row t starts at
// base + (b * T + t) * ld + h * hs.
struct FlashCols {
  float* base;
  int64_t ld;
};

struct FlashProblem {
  int64_t B, Tq, Tk, NH, hs;
  float scale;
  bool causal;                 // needs Tq == Tk
  const int32_t* key_lengths;  // device [B], each in [1, Tk], or null
};

// Whether the flash kernels take a head size (64 and 128: gpt2-small/medium, BERT, T5).
inline bool flash_head_size(int64_t hs) {
  return hs == 64 || hs == 128;
}

// out [B, Tq, NH * hs] and lse [B, NH, Tq], as the exact kernel writes them. Every block's base
// and ld must be 16-byte aligned (4 floats).
void flash_attention_forward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, float* out,
                             float* lse, cudaStream_t stream);

// dq, dk, dv overwritten from dout and out [B, Tq, NH * hs] and lse; D [B, NH, Tq] is scratch
// (D_i = dO_i . O_i).
void flash_attention_backward(const FlashProblem& p, FlashCols q, FlashCols k, FlashCols v, const float* dout,
                              const float* out, const float* lse, float* D, FlashCols dq, FlashCols dk,
                              FlashCols dv, cudaStream_t stream);

}  // namespace kervan::cuda
