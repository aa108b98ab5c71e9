#pragma once
#include "core/parameters.h"

namespace kervan {

// Fully connected layer, weight stored [out, in] as in PyTorch:
//   forward   Y = X W^T + b                  X [N, in], Y [N, out]
//   backward  dW += dY^T X,  db += sum_n dY,  dX = dY W
class Linear {
 public:
  Linear(ParameterSet& params, const std::string& name, int64_t in, int64_t out, float init_std,
         bool bias = true);
  void forward(Backend& be, Tensor& y, const Tensor& x) const;
  // dx may be null when the input needs no gradient; otherwise it is overwritten.
  void backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x) const;

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }

 private:
  int64_t in_, out_;
  Parameter& weight_;
  Parameter* bias_;
};

}  // namespace kervan
