#include "core/layers/relative_position_bias.h"

#include <algorithm>
#include <cmath>

namespace kervan {

RelativePositionBias::RelativePositionBias(ParameterSet& params, const std::string& name, int n_head,
                                           bool bidirectional, float init_std, TpGroup* tp, int num_buckets,
                                           int max_distance)
    : bidirectional_(bidirectional),
      num_buckets_(num_buckets),
      max_distance_(max_distance),
      table_(params.declare(name, {num_buckets, n_head / (tp ? tp->size() : 1)},
                            {Init::Kind::Normal, init_std}, false,
                            tp && tp->size() > 1 ? Sharding::cols(tp->size(), tp->rank()) : Sharding{})) {}

int32_t RelativePositionBias::bucket(int64_t relative_position, bool bidirectional, int num_buckets,
                                     int max_distance) {
  int32_t base = 0;
  int64_t d;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative_position > 0) base = num_buckets;
    d = std::abs(relative_position);
  } else {
    d = std::max<int64_t>(-relative_position, 0);
  }
  const int max_exact = num_buckets / 2;
  if (d < max_exact) return base + static_cast<int32_t>(d);
  // In float32 as PyTorch computes it, truncated towards zero like .to(torch.long).
  const float large = std::log(static_cast<float>(d) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                      static_cast<float>(num_buckets - max_exact);
  return base + std::min(max_exact + static_cast<int32_t>(large), num_buckets - 1);
}

std::vector<int32_t> RelativePositionBias::buckets(int64_t Tq, int64_t Tk) const {
  std::vector<int32_t> out(Tq * Tk);
  for (int64_t i = 0; i < Tq; ++i)
    for (int64_t j = 0; j < Tk; ++j)
      out[i * Tk + j] = bucket(j - i, bidirectional_, num_buckets_, max_distance_);
  return out;
}

void RelativePositionBias::forward(Backend& be, Tensor& bias, const Tensor& buckets) const {
  be.relative_bias_forward(bias, table_.value, buckets);
}

void RelativePositionBias::backward(Backend& be, const Tensor& dbias, const Tensor& buckets) const {
  be.relative_bias_backward(table_.grad, dbias, buckets);
}

}  // namespace kervan
