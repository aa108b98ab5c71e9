#pragma once
#include "core/layers/linear.h"

namespace kervan {

struct MlpSaved {
  Tensor fc;       // [B, T, 4C]  c_fc(x)
  Tensor fc_gelu;  // [B, T, 4C]  gelu(fc), input of c_proj
};

// GPT-2 MLP:  y = gelu_tanh(x W_fc^T + b_fc) W_proj^T + b_proj,  hidden size `hidden` (4C).
// GELU's math is in core/cpu/gelu.cpp.
class Mlp {
 public:
  Mlp(ParameterSet& params, const std::string& name, int64_t dim, int64_t hidden, float init_std,
      float proj_std);
  void forward(Backend& be, Tensor& y, MlpSaved& saved, const Tensor& x) const;
  // dx is overwritten; dhidden [B, T, 4C] is scratch.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const MlpSaved& saved,
                Tensor& dhidden) const;

 private:
  Linear c_fc_;
  Linear c_proj_;
};

}  // namespace kervan
