#include "parallel/tensor_parallel.h"

#include <cmath>

namespace kervan {

std::vector<float> gather_global(Backend& be, const Parameter& p, Communicator& tp) {
  const int64_t n = p.value.numel();
  std::vector<float> out(n);
  if (!p.sharding.sharded()) {
    be.copy_to_host(out.data(), p.value);
    return out;
  }
  const int parts = tp.size();
  Tensor all = be.empty({n * parts}, DType::F32);
  tp.all_gather(all, p.value.view({n}));
  std::vector<float> host(n * parts);
  be.copy_to_host(host.data(), all);
  out.assign(n * parts, 0.0f);
  Sharding s = p.sharding;
  for (int r = 0; r < parts; ++r) {
    s.index = r;
    for (int64_t i = 0; i < n; ++i) out[s.global_index(p.shape, i)] = host[r * n + i];
  }
  return out;
}

float tp_grad_global_norm(Backend& be, ParameterSet& params, Communicator& tp) {
  double sharded = 0.0, replicated = 0.0;
  for (Parameter& p : params.all()) (p.sharding.sharded() ? sharded : replicated) += be.sum_squares(p.grad);
  Tensor t = be.empty({1}, DType::F32);
  const float v = static_cast<float>(sharded);
  be.copy_from_host(t, &v);
  tp.all_reduce(t, ReduceOp::Sum);
  float total = 0.0f;
  be.copy_to_host(&total, t);
  return static_cast<float>(std::sqrt(static_cast<double>(total) + replicated));
}

}  // namespace kervan
