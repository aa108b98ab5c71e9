#pragma once
#include "core/parameters.h"

namespace kervan {

// T5's layer norm: a learned scale, no shift and no mean subtraction (eps 1e-6):
//   y = x / sqrt(mean(x^2) + eps) * w
// The per-row 1/rms is saved by forward for backward (math in core/cpu/rmsnorm.cpp).
class RmsNorm {
 public:
  RmsNorm(ParameterSet& params, const std::string& name, int64_t dim, float eps = 1e-6f);
  void forward(Backend& be, Tensor& y, Tensor& rstd, const Tensor& x) const;
  // dx is overwritten (must not alias dy); dw accumulates.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& rstd) const;

 private:
  Parameter& weight_;
  float eps_;
};

}  // namespace kervan
