#include "parallel/grad_norm.h"

#include <algorithm>
#include <cmath>

namespace kervan {

double global_grad_norm(Backend& be, const ParameterSet& params, const Tensor& grads, int64_t flat_begin,
                        Communicator* tp, Communicator* dp) {
  const int tp_size = tp ? tp->size() : 1;
  double sum = 0.0;
  if (tp_size == 1) {
    sum = be.sum_squares(grads);
  } else {
    const int64_t end = flat_begin + grads.numel();
    for (const Parameter& p : params.all()) {
      const int64_t lo = std::max(p.offset, flat_begin), hi = std::min(p.offset + p.value.numel(), end);
      if (lo >= hi) continue;
      const double sq = be.sum_squares(grads.slice_flat(lo - flat_begin, {hi - lo}));
      sum += p.sharding.sharded() ? sq : sq / tp_size;
    }
  }
  if ((tp && tp->size() > 1) || (dp && dp->size() > 1)) {
    Tensor t = be.empty({1}, DType::F64);
    be.copy_from_host(t, &sum);
    if (tp && tp->size() > 1) tp->all_reduce(t, ReduceOp::Sum);
    if (dp && dp->size() > 1) dp->all_reduce(t, ReduceOp::Sum);
    sum = be.item<double>(t);
  }
  return std::sqrt(sum);
}

}  // namespace kervan
