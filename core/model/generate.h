#pragma once
#include <cstdint>
#include <vector>

#include "core/model/model.h"

namespace kervan {

struct SampleOptions {
  int64_t max_new_tokens = 100;
  float temperature = 1.0f;  // <= 0: greedy
  int64_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 0;
};

// Autoregressive sampling from a model that can_generate(): appends max_new_tokens to `prompt`
// (at least one token), feeding the model the last `window` tokens each time. Deterministic for a
// given seed. Under tensor parallelism every rank of the group must call it (the logits are
// gathered over the vocabulary shards); all of them return the same tokens.
std::vector<int32_t> generate(Model& model, std::vector<int32_t> prompt, int64_t window,
                              const SampleOptions& opt);

}  // namespace kervan
