#include "parallel/zero.h"

#include <algorithm>

#include "parallel/grad_norm.h"

namespace kervan {

ShardedAdamW::ShardedAdamW(ParameterSet& params, Communicator& group, Backend& backend, AdamWConfig config,
                           Communicator* tp)
    : params_(params),
      group_(group),
      tp_(tp && tp->size() > 1 ? tp : nullptr),
      be_(backend),
      cfg_(config),
      shard_(chunk_of(params.numel(), group.size(), group.rank())) {
  const int64_t n = std::max<int64_t>(shard_.count, 1);
  grad_shard_ = be_.zeros({n});
  m_ = be_.zeros({n});
  v_ = be_.zeros({n});
}

float ShardedAdamW::reduce_gradients() {
  Tensor mine = grad_shard_.slice_flat(0, {shard_.count});
  group_.reduce_scatter(mine, params_.grads(), ReduceOp::Avg);
  return static_cast<float>(global_grad_norm(be_, params_, mine, shard_.begin, tp_, &group_));
}

void ShardedAdamW::step(float lr, float grad_scale) {
  ++t_;
  AdamWStep st = adamw_step(cfg_, t_, lr, grad_scale);
  const int64_t s0 = shard_.begin, s1 = shard_.begin + shard_.count;
  for (Parameter& p : params_.all()) {
    const int64_t lo = std::max(p.offset, s0), hi = std::min(p.offset + p.value.numel(), s1);
    if (lo >= hi) continue;
    st.weight_decay = p.weight_decay ? cfg_.weight_decay : 0.0f;
    Tensor value = params_.values().slice_flat(lo, {hi - lo});
    Tensor grad = grad_shard_.slice_flat(lo - s0, {hi - lo});
    Tensor m = m_.slice_flat(lo - s0, {hi - lo}), v = v_.slice_flat(lo - s0, {hi - lo});
    be_.adamw_update(value, grad, m, v, st);
  }
  Tensor all = params_.values();
  group_.all_gather(all, all.slice_flat(s0, {shard_.count}));
}

void ShardedAdamW::state(StateDict& out) {
  params_.append_state(out, "optim/m/", m_.slice_flat(0, {shard_.count}), shard_.begin, group_.rank());
  params_.append_state(out, "optim/v/", v_.slice_flat(0, {shard_.count}), shard_.begin, group_.rank());
  out.values["optim/step"] = t_;
}

void ShardedAdamW::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
  t_ = in.value<int64_t>("optim/step");
}

}  // namespace kervan
