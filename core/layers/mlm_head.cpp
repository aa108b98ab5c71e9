#include "core/layers/mlm_head.h"

namespace kervan {

namespace {
constexpr float kBertLayerNormEps = 1e-12f;
}

MlmHead::MlmHead(ParameterSet& params, const std::string& name, int64_t dim, const Parameter& tied,
                 int64_t vocab, int64_t vocab_begin, float init_std, TpGroup* tp)
    : dense_(params, name + ".dense", dim, dim, init_std),
      ln_(params, name + ".ln", dim, kBertLayerNormEps),
      bias_(params.declare(name + ".bias", {tied.shape[0]}, {Init::Kind::Zeros}, false,
                           tp && tp->size() > 1 ? Sharding::rows(tp->size(), tp->rank()) : Sharding{})),
      lm_(tied, &bias_, vocab, vocab_begin, 1.0f, tp) {}

LossSum MlmHead::forward(Backend& be, MlmHeadTensors& t, const Tensor& h, const Tensor& targets,
                         const int32_t* host_targets) const {
  dense_.forward(be, t.dense, h);
  be.activation_forward(t.act, t.dense, Activation::GeluErf);
  ln_.forward(be, t.ln, t.ln_mean, t.ln_rstd, t.act);
  return lm_.forward(be, t.lm, t.ln, targets, host_targets);
}

void MlmHead::backward(Backend& be, Tensor& dh, MlmHeadTensors& t, const Tensor& h, const Tensor& targets,
                       float dloss) const {
  lm_.backward(be, t.dln, t.lm, t.ln, targets, dloss);
  ln_.backward(be, t.dact, t.dln, t.act, t.ln_mean, t.ln_rstd);
  be.activation_backward(t.dact, t.dense, t.dact, Activation::GeluErf);
  dense_.backward(be, &dh, t.dact, h);
}

}  // namespace kervan
