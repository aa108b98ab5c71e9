#pragma once
#include "core/parameters.h"
#include "core/state.h"

namespace kervan {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // applied only to parameters declared with weight_decay
};

// The update of step t (1-based) at learning rate lr, weight decay still to be set per parameter.
AdamWStep adamw_step(const AdamWConfig& config, int64_t t, float lr, float grad_scale);

// AdamW over a ParameterSet, with first and second moments in flat buffers parallel to the
// parameters (math in core/cpu/adamw.cpp).
class AdamW final : public Stateful {
 public:
  AdamW(ParameterSet& params, Backend& backend, AdamWConfig config);
  // One update at learning rate `lr`; gradients are multiplied by `grad_scale` first (clipping).
  void step(float lr, float grad_scale);

  // optim/m/<param>, optim/v/<param> (placed like the parameters) and optim/step.
  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;

 private:
  ParameterSet& params_;
  Backend& be_;
  AdamWConfig cfg_;
  Tensor m_, v_;
  int64_t t_ = 0;
};

// The factor that clips a gradient of global L2 norm `norm` to max_norm (as
// torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6), capped at 1; max_norm <= 0: no clip).
// The norm itself comes from parallel/grad_norm.h, which knows how the gradient is spread.
float clip_factor(float norm, float max_norm);

}  // namespace kervan
