#include "core/optim/adamw.h"

#include <cmath>

namespace kervan {

AdamWStep adamw_step(const AdamWConfig& c, int64_t t, float lr, float grad_scale) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(t));
  return {lr, c.beta1, c.beta2, c.eps, 0.0f, static_cast<float>(bc1), static_cast<float>(bc2), grad_scale};
}

AdamW::AdamW(ParameterSet& params, Backend& backend, AdamWConfig config)
    : params_(params), be_(backend), cfg_(config) {
  m_ = be_.zeros({params.numel()});
  v_ = be_.zeros({params.numel()});
}

void AdamW::step(float lr, float grad_scale) {
  ++t_;
  AdamWStep st = adamw_step(cfg_, t_, lr, grad_scale);
  for (Parameter& p : params_.all()) {
    st.weight_decay = p.weight_decay ? cfg_.weight_decay : 0.0f;
    Tensor m = m_.slice_flat(p.offset, p.shape);
    Tensor v = v_.slice_flat(p.offset, p.shape);
    be_.adamw_update(p.value, p.grad, m, v, st);
  }
}

void AdamW::state(StateDict& out) {
  params_.append_state(out, "optim/m/", m_, 0);
  params_.append_state(out, "optim/v/", v_, 0);
  out.values["optim/step"] = t_;
}

void AdamW::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
  t_ = in.value<int64_t>("optim/step");
}

float clip_factor(float norm, float max_norm) {
  if (max_norm <= 0.0f) return 1.0f;
  const float f = max_norm / (norm + 1e-6f);
  return f < 1.0f ? f : 1.0f;
}

}  // namespace kervan
