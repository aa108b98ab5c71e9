#pragma once
#include <cstdint>
#include <vector>

#include "core/model/model.h"
#include "core/model/t5.h"

namespace kervan {

struct SampleOptions {
  int64_t max_new_tokens = 100;
  float temperature = 1.0f;  // <= 0: greedy
  int64_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 0;
  int64_t stop_token = -1;  // stop after generating this token (>= 0)
};

// Autoregressive sampling from a model that can_generate(): appends max_new_tokens to `prompt`
// (at least one token), feeding the model the last `window` tokens each time. Deterministic for a
// given seed. Under tensor parallelism every rank of the group must call it (the logits are
// gathered over the vocabulary shards); all of them return the same tokens.
std::vector<int32_t> generate(Model& model, std::vector<int32_t> prompt, int64_t window,
                              const SampleOptions& opt);

// Greedy decoding with T5: the encoder reads `input` (every position real), the decoder starts
// from `start` and appends the most likely token until it produces `stop` or has max_new tokens.
// Returns the generated tokens, without the start token. Under tensor parallelism every rank of the
// group calls it alike.
std::vector<int32_t> greedy_seq2seq(T5& model, const std::vector<int32_t>& input, int32_t start, int32_t stop,
                                    int64_t max_new);

}  // namespace kervan
