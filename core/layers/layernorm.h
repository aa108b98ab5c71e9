#pragma once
#include "core/parameters.h"

namespace kervan {

// LayerNorm over the last dimension with learned scale and shift:
//   y = (x - mean) / sqrt(var + eps) * w + b      (eps 1e-5 in GPT-2, 1e-12 in BERT)
// The per-row mean and 1/std are saved by forward for backward (math in core/cpu/layernorm.cpp).
class LayerNorm {
 public:
  LayerNorm(ParameterSet& params, const std::string& name, int64_t dim, float eps = 1e-5f);
  void forward(Backend& be, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x) const;
  // dx is overwritten (must not alias dy); dw, db accumulate.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& mean,
                const Tensor& rstd) const;

 private:
  Parameter& weight_;
  Parameter& bias_;
  float eps_;
};

}  // namespace kervan
