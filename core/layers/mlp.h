#pragma once
#include "core/layers/linear.h"

namespace kervan {

struct MlpSaved {
  Tensor fc;       // [B, T, 4C] (4C/p under tensor parallelism, likewise below)  c_fc(x)
  Tensor fc_gelu;  // [B, T, 4C]  gelu(fc), input of c_proj
};

// GPT-2 MLP:  y = gelu_tanh(x W_fc^T + b_fc) W_proj^T + b_proj,  hidden size `hidden` (4C).
// GELU's math is in core/cpu/gelu.cpp. Tensor parallel over `tp` (p ranks): c_fc is
// column-parallel (local [4C/p, C]), GELU acts on the local hidden slice, c_proj is row-parallel
// (local [C, 4C/p]) with an all-reduce and the replicated bias added once.
class Mlp {
 public:
  Mlp(ParameterSet& params, const std::string& name, int64_t dim, int64_t hidden, float init_std,
      float proj_std, TpGroup* tp = nullptr);
  void forward(Backend& be, Tensor& y, MlpSaved& saved, const Tensor& x) const;
  // dx is overwritten; dhidden [B, T, 4C] is scratch.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const MlpSaved& saved,
                Tensor& dhidden) const;

 private:
  Linear c_fc_;
  Linear c_proj_;
};

}  // namespace kervan
