#pragma once
// The CUDA backend's bf16 matrix products (matmul_bf16.cu states the math, the design and its
// cost); for the .cu files of core/cuda only.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "core/column_major_gemm.h"
#include "core/tensor.h"

namespace kervan::cuda {

// What cuBLASLt's descriptors and its heuristic's choice depend on: the product in cuBLASLt's
// column-major terms (core/column_major_gemm.h) and the rest: the key of the plan cache.
struct LtShape {
  ColumnMajorGemm g;
  bool beta_zero = false;      // a heuristic may pick another algorithm when C is not read
  int64_t align_d = 0;         // address_alignment of D (= C): a view may start off 256 bytes
  bool deterministic = false;  // split-K algorithms excluded (matmul_bf16.cu)
  auto tie() const {
    return std::tie(g.m, g.n, g.k, g.trans_a, g.trans_b, g.lda, g.ldb, g.ldd, beta_zero, align_d,
                    deterministic);
  }
  bool operator<(const LtShape& o) const { return tie() < o.tie(); }
};

class Bf16Matmul {
 public:
  explicit Bf16Matmul(cudaStream_t stream);
  ~Bf16Matmul();
  Bf16Matmul(const Bf16Matmul&) = delete;
  Bf16Matmul& operator=(const Bf16Matmul&) = delete;

  // y [m, n] = alpha op(a) op(b) + beta y for row-major fp32 tensors (k > 0), with a and b rounded
  // to bf16 first; `shapes` names the product in errors. With a_rounded, a is the a of the
  // previous call, whose bf16 copy is still in the workspace and is not made again (the caller
  // reserve()d room for both products before the first).
  void run(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta,
           bool deterministic, const std::string& shapes, bool a_rounded);
  // Grows the workspace for operands of a_elems and b_elems now (Backend::linear_backward's pair).
  void reserve(int64_t a_elems, int64_t b_elems);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // The cached plan of s, made on first use (the heuristic's first algorithm).
  const Plan& plan_for(const LtShape& s, const std::string& shapes);
  static void destroy(Plan& p);
  void* operands(int64_t bytes);

  cudaStream_t stream_;
  cublasLtHandle_t lt_ = nullptr;
  void* lt_workspace_ = nullptr;  // kCublasLtWorkspaceBytes
  void* operands_ = nullptr;      // the bf16 copies, grown to the largest product so far
  int64_t operand_bytes_ = 0;
  const void* rounded_a_ = nullptr;  // the fp32 tensor whose bf16 copy the workspace's a holds
  int64_t rounded_a_elems_ = 0;
  std::map<LtShape, Plan> plans_;
};

}  // namespace kervan::cuda
