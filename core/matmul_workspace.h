#pragma once
// The device memory a bf16 matrix product needs besides its operands and output (the CUDA backend's
// matmul under Precision::BF16, core/cuda/matmul_bf16.cu): the bf16 copies of its two fp32 operands,
// and cuBLASLt's own workspace. Functions of the shapes alone, like attention_saved_shape in
// core/backend.h, so that the backend allocates and the memory plan (launcher/memory_plan.cpp)
// counts the same bytes.
#include <cstdint>

namespace kervan {

// Each bf16 copy starts at a multiple of this: cuBLASLt's heuristic assumes 256-byte aligned
// operands unless told less, and with it every algorithm stays eligible.
inline constexpr int64_t kMatmulOperandAlign = 256;

// cuBLASLt's workspace (split-K partial sums and the like): 32 MiB, what llm.c and PyTorch give it
// on Hopper.
inline constexpr int64_t kCublasLtWorkspaceBytes = 32 << 20;

// Where the bf16 copies of a (a_elems) and b (b_elems) lie in the operand workspace: a at 0, b at
// b_offset; `bytes` in all.
struct Bf16OperandLayout {
  int64_t b_offset = 0;
  int64_t bytes = 0;
};

inline int64_t round_up(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

inline Bf16OperandLayout bf16_operand_layout(int64_t a_elems, int64_t b_elems) {
  const int64_t b_offset = round_up(2 * a_elems, kMatmulOperandAlign);
  return {b_offset, round_up(b_offset + 2 * b_elems, kMatmulOperandAlign)};
}

// The alignment cuBLASLt is told a buffer at `address` has: the largest power of two dividing it,
// at most kMatmulOperandAlign (a tensor view may start anywhere its dtype allows).
inline int64_t address_alignment(uintptr_t address) {
  int64_t a = 1;
  while (a < kMatmulOperandAlign && address % (2 * a) == 0) a *= 2;
  return a;
}

}  // namespace kervan
