#include "parallel/zero.h"

#include <algorithm>
#include <cmath>

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
  Tensor sq = be_.empty({1}, DType::F32);
  float partial = 0.0f;
  if (!tp_) {
    partial = static_cast<float>(be_.sum_squares(mine));
  } else {  // replicated pieces count 1/tp on each of the tp ranks that hold them
    const int64_t s0 = shard_.begin, s1 = shard_.begin + shard_.count;
    double acc = 0.0;
    for (Parameter& p : params_.all()) {
      const int64_t lo = std::max(p.offset, s0), hi = std::min(p.offset + p.value.numel(), s1);
      if (lo >= hi) continue;
      const double sq_piece = be_.sum_squares(grad_shard_.slice_flat(lo - s0, {hi - lo}));
      acc += p.sharding.sharded() ? sq_piece : sq_piece / tp_->size();
    }
    partial = static_cast<float>(acc);
  }
  be_.copy_from_host(sq, &partial);
  group_.all_reduce(sq, ReduceOp::Sum);
  if (tp_) tp_->all_reduce(sq, ReduceOp::Sum);
  return std::sqrt(sq.data<float>()[0]);
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

}  // namespace kervan
