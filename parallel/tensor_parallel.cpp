#include "parallel/tensor_parallel.h"

namespace kervan {

std::vector<float> gather_global(Backend& be, const Parameter& p, Communicator& tp) {
  const int64_t n = p.value.numel();
  if (!p.sharding.sharded()) return be.to_host<float>(p.value);
  const int parts = tp.size();
  Tensor all = be.empty({n * parts}, DType::F32);
  tp.all_gather(all, p.value.view({n}));
  const std::vector<float> host = be.to_host<float>(all);
  std::vector<float> out(n * parts);
  Sharding s = p.sharding;
  for (int r = 0; r < parts; ++r) {
    s.index = r;
    for (int64_t i = 0; i < n; ++i) out[s.global_index(p.shape, i)] = host[r * n + i];
  }
  return out;
}

}  // namespace kervan
