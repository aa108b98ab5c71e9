#include "datasets/window_sampler.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

WindowSampler::WindowSampler(int64_t n_tokens, int64_t seq_len, uint64_t seed)
    : seq_len_(seq_len), windows_(n_tokens > 0 ? (n_tokens - 1) / seq_len : 0), seed_(seed) {
  if (windows_ < 1)
    throw UserError("data: " + std::to_string(n_tokens) + " tokens are fewer than one training sequence (train.seq_len + 1 = " +
                    std::to_string(seq_len + 1) + ")");
}

int64_t WindowSampler::window_start(int64_t k) {
  const int64_t epoch = k / windows_;
  if (epoch != epoch_) {  // Fisher-Yates with the epoch's own counter-based stream
    perm_.resize(windows_);
    std::iota(perm_.begin(), perm_.end(), int64_t{0});
    const uint64_t key = stream_key(seed_, "data.epoch." + std::to_string(epoch));
    for (int64_t i = windows_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(splitmix64(key ^ splitmix64(i)) % static_cast<uint64_t>(i + 1));
      std::swap(perm_[i], perm_[j]);
    }
    epoch_ = epoch;
  }
  return perm_[k % windows_] * seq_len_;
}

void WindowSampler::fill_batch(const uint16_t* tokens, int64_t first_sample, int64_t batch, int32_t* inputs,
                               int32_t* targets) {
  for (int64_t b = 0; b < batch; ++b) {
    const uint16_t* w = tokens + window_start(first_sample + b);
    for (int64_t t = 0; t < seq_len_; ++t) {
      inputs[b * seq_len_ + t] = w[t];
      targets[b * seq_len_ + t] = w[t + 1];
    }
  }
}

}  // namespace kervan
