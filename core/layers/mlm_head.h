#pragma once
#include "core/layers/layernorm.h"
#include "core/layers/linear.h"
#include "core/layers/lm_head.h"

namespace kervan {

// The tensors of one MLM-head pass over M rows (the masked positions).
struct MlmHeadTensors {
  Tensor dense, act, ln;    // [M, C]
  Tensor ln_mean, ln_rstd;  // [M]
  LmHeadTensors lm;
  Tensor dln, dact;  // [M, C] backward scratch
};

// BERT's masked-LM head: a transform, then the LM head tied to the word embedding with its own
// output bias:
//   u = LayerNorm(gelu_erf(h W_t^T + b_t)),  logits = u wte^T + b,  loss = cross-entropy
// (LayerNorm eps 1e-12). It runs on the masked positions only (the caller gathers their rows).
// Tensor parallel: the transform is replicated (every rank computes it from the same rows), the
// tied projection and b are split by vocabulary rows like wte (see LmHead).
class MlmHead {
 public:
  MlmHead(ParameterSet& params, const std::string& name, int64_t dim, const Parameter& tied, int64_t vocab,
          int64_t vocab_begin, float init_std, TpGroup* tp = nullptr);
  LossSum forward(Backend& be, MlmHeadTensors& t, const Tensor& h, const Tensor& targets,
                  const int32_t* host_targets) const;
  // dh is overwritten; the head's parameters (and the tied embedding) accumulate.
  void backward(Backend& be, Tensor& dh, MlmHeadTensors& t, const Tensor& h, const Tensor& targets,
                float dloss) const;

 private:
  Linear dense_;
  LayerNorm ln_;
  Parameter& bias_;
  LmHead lm_;
};

}  // namespace kervan
