#pragma once
// The CUDA backend class, for the .cu files of core/cuda only (the rest of kervan sees
// make_cuda_backend() in cuda_backend.h).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_check.h"

namespace kervan {

namespace cuda {
class Bf16Matmul;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;
  Device device() const override { return Device::CUDA; }
  void set_precision(Precision p) override { precision_ = p; }
  Precision precision() const override { return precision_; }
  void set_deterministic(bool on) override { deterministic_ = on; }
  bool deterministic() const override { return deterministic_; }

  Tensor empty(const Shape& shape, DType dtype) override;
  void fill(Tensor& t, float value) override;
  void copy_from_host(Tensor& dst, const void* src) override;
  void copy_to_host(void* dst, const Tensor& src) override;
  void copy(Tensor& dst, const Tensor& src) override;

  void matmul(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha,
              float beta) override;
  void linear_backward(Tensor& dw, Tensor* dx, const Tensor& dy, const Tensor& x, const Tensor& w, float alpha,
                       float dw_beta) override;
  void add_bias(Tensor& y, const Tensor& bias) override;
  void bias_backward(Tensor& dbias, const Tensor& dy) override;
  void add(Tensor& out, const Tensor& a, const Tensor& b) override;
  double sum_squares(const Tensor& t) override;

  void embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe) override;
  void gather_rows(Tensor& out, const Tensor& table, const Tensor& ids, bool accumulate) override;
  void scatter_add_rows(Tensor& table, const Tensor& rows, const Tensor& ids, float scale) override;
  void position_embedding_backward(Tensor& dwpe, const Tensor& dout) override;
  void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                         const Tensor& b, float eps) override;
  void layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dout, const Tensor& x,
                          const Tensor& w, const Tensor& mean, const Tensor& rstd) override;
  void rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) override;
  void rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override;
  void activation_forward(Tensor& out, const Tensor& x, Activation act) override;
  void activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) override;
  void gated_activation_forward(Tensor& out, const Tensor& x, Activation act) override;
  void gated_activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) override;
  void attention_forward(Tensor& out, Tensor& saved, const ColumnBlock& q, const ColumnBlock& k,
                         const ColumnBlock& v, const AttentionSpec& spec) override;
  void attention_backward(const ColumnBlock& dq, const ColumnBlock& dk, const ColumnBlock& dv, Tensor& dprobs,
                          const Tensor& dout, const Tensor& out, const ColumnBlock& q, const ColumnBlock& k,
                          const ColumnBlock& v, const Tensor& saved, const AttentionSpec& spec) override;
  void relative_bias_forward(Tensor& bias, const Tensor& table, const Tensor& buckets) override;
  void relative_bias_backward(Tensor& dtable, const Tensor& dbias, const Tensor& buckets) override;
  void cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets,
                             int64_t vocab) override;
  void cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& targets, int64_t vocab,
                              float dloss) override;
  void vocab_parallel_row_max(Tensor& mx, const Tensor& logits, int64_t valid) override;
  void vocab_parallel_exp_sum_target(Tensor& sum, Tensor& tgt, const Tensor& logits, const Tensor& mx,
                                     const Tensor& targets, int64_t col0, int64_t valid) override;
  void vocab_parallel_cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& mx,
                                             const Tensor& sum, const Tensor& targets, int64_t col0,
                                             int64_t valid, float dloss) override;

  void recurrent_step_forward(RecurrentCell cell, Tensor& h, Tensor& c, Tensor& saved, const Tensor& xg,
                              const Tensor& hg, const Tensor& b_hh, const Tensor& h_prev,
                              const Tensor& c_prev) override;
  void recurrent_step_backward(RecurrentCell cell, Tensor& dgx, Tensor& dgh, Tensor& dh, Tensor& dc,
                               const Tensor& dy, const Tensor& saved, const Tensor& h, const Tensor& h_prev,
                               const Tensor& c, const Tensor& c_prev) override;

  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step) override;

  void synchronize() override;
  int num_threads() const override { return 1; }

  // The stream every kernel, copy and GEMM of this backend runs on.
  cudaStream_t stream() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Precision precision_ = Precision::F32;
  bool deterministic_ = false;
  std::unique_ptr<cuda::Bf16Matmul> bf16_;  // made by the first bf16 product (matmul_bf16.cu)
};

namespace cuda {

// [N, C] view of a tensor: C is the last dimension, N the product of the others.
struct RowsCols {
  int64_t rows, cols;
};
RowsCols rows_cols(const Tensor& t);

// Raw device pointers of a tensor, dtype-checked (Tensor::data<T>() is the same pointer; these
// names say it is a device one).
inline const float* dev_f32(const Tensor& t) {
  return t.data<float>();
}
inline float* dev_f32_mut(const Tensor& t) {
  return t.data<float>();
}
inline const int32_t* dev_i32(const Tensor& t) {
  return t.data<int32_t>();
}

}  // namespace cuda
}  // namespace kervan
