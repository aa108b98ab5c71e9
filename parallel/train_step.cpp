#include "parallel/train_step.h"

#include "parallel/grad_norm.h"

namespace kervan {

namespace {
Communicator* group_or_null(Communicator* c) {
  return c && c->size() > 1 ? c : nullptr;
}
}  // namespace

TrainStep::TrainStep(Model& model, AdamWConfig adamw, StepLayout layout) : model_(model), layout_(layout) {
  layout_.dp = group_or_null(layout.dp);
  layout_.tp = group_or_null(layout.tp);
  if (layout_.dp && layout_.zero1) {
    sharded_ =
        std::make_unique<ShardedAdamW>(model.params(), *layout_.dp, model.backend(), adamw, layout_.tp);
    return;
  }
  if (layout_.dp) reducer_ = std::make_unique<GradientAllReducer>(model, *layout_.dp, layout_.bucket_bytes);
  adamw_ = std::make_unique<AdamW>(model.params(), model.backend(), adamw);
}

void TrainStep::before_last_backward() {
  if (reducer_) reducer_->begin();
}

float TrainStep::reduce_gradients() {
  if (sharded_) return sharded_->reduce_gradients();
  if (reducer_) reducer_->finish();
  // Every DP replica now holds the same averaged gradient: the norm is summed over TP only.
  ParameterSet& params = model_.params();
  return static_cast<float>(
      global_grad_norm(model_.backend(), params, params.grads(), 0, layout_.tp, nullptr));
}

void TrainStep::step(float lr, float grad_scale) {
  if (sharded_) {
    sharded_->step(lr, grad_scale);
  } else {
    adamw_->step(lr, grad_scale);
  }
}

int64_t TrainStep::optimizer_state_numel() const {
  return sharded_ ? sharded_->state_numel() : 2 * model_.params().numel();
}

void TrainStep::state(StateDict& out) {
  model_.state(out);
  if (sharded_) {
    sharded_->state(out);
  } else {
    adamw_->state(out);
  }
  mark_writers(out, layout_.tp ? layout_.tp->rank() : 0, layout_.dp ? layout_.dp->rank() : 0);
}

void TrainStep::load_state(const StateDict& in) {
  model_.load_state(in);
  if (sharded_) {
    sharded_->load_state(in);
  } else {
    adamw_->load_state(in);
  }
}

}  // namespace kervan
