#pragma once
#include "core/layers/linear.h"

namespace kervan {

// The feed-forward variants of the families.
struct MlpOptions {
  Activation act = Activation::GeluTanh;  // GPT-2: tanh GELU; BERT: erf GELU; T5: ReLU or gated tanh GELU
  bool gated = false;                     // T5 v1.1: act(x W_0^T) * (x W_1^T)
  bool bias = true;                       // T5 has no biases
};

struct MlpSaved {
  Tensor fc;   // [B, T, H] (or [B, T, 2H] gated: [gate | linear]; H/p under tensor parallelism)  c_fc(x)
  Tensor act;  // [B, T, H]  act(fc) (gated: act(gate) * linear), input of c_proj
};

// Scratch shared by all layers' backward passes.
struct MlpScratch {
  Tensor dhidden;  // [B, T, H]
  Tensor dfc;      // [B, T, 2H], gated only
};

// Feed-forward block, hidden size `hidden`:
//   plain  y = act(x W_fc^T + b_fc) W_proj^T + b_proj
//   gated  y = (act(x W_0^T) * (x W_1^T)) W_proj^T,  W_0 and W_1 fused as c_fc = [W_0; W_1]
// The activations' math is in core/cpu/activation.cpp. Tensor parallel over `tp` (p ranks): c_fc
// is column-parallel (a gated c_fc splits W_0 and W_1 alike, local [W_0,k; W_1,k]), the
// activation acts on the local hidden slice, c_proj is row-parallel (local [C, H/p]) with an
// all-reduce and the replicated bias added once.
class Mlp {
 public:
  Mlp(ParameterSet& params, const std::string& name, int64_t dim, int64_t hidden, float init_std,
      float proj_std, const MlpOptions& opt = {}, TpGroup* tp = nullptr);
  void forward(Backend& be, Tensor& y, MlpSaved& saved, const Tensor& x) const;
  // dx is overwritten.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const MlpSaved& saved,
                MlpScratch& scratch) const;

 private:
  MlpOptions opt_;
  Linear c_fc_;
  Linear c_proj_;
};

}  // namespace kervan
