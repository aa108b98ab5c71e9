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
  float top_p = 1.0f;       // nucleus: the fewest most likely tokens whose probability reaches top_p
  bool kv_cache = true;     // use the model's KV cache where it has one
};

// Where the time of one generate() went. The prefill is the first token's forward over the prompt;
// each later token is a decode step: one position through the KV cache, or, without a cache or
// once the text is longer than the window, a recompute of the whole window.
struct GenerateStats {
  int64_t prompt_tokens = 0;  // the prompt positions the prefill ran (at most the window)
  int64_t decode_tokens = 0;  // tokens after the first
  int64_t recomputed = 0;     // of those, tokens whose step recomputed the window
  double prefill_s = 0, decode_s = 0;
};

// Autoregressive sampling from a model that can_generate(): appends max_new_tokens to `prompt`
// (at least one token); each token is drawn from the logits of the last `window` tokens.
// Deterministic for a given seed. With a KV cache (model.has_kv_cache() and opt.kv_cache) the
// prompt's last `window` tokens are prefilled and each new token is one cached step, until the
// text reaches `window` tokens; from then on every step recomputes the last `window` tokens (a
// sliding window: the positions shift, so the cached keys no longer apply). The logits, and so
// the tokens, are those of the uncached path up to float rounding. The cache is released at the
// end. Under tensor parallelism every rank of the group must call it (the logits are gathered over
// the vocabulary shards); all of them return the same tokens.
std::vector<int32_t> generate(Model& model, std::vector<int32_t> prompt, int64_t window,
                              const SampleOptions& opt, GenerateStats* stats = nullptr);

// Greedy decoding with T5: the encoder reads `input` (every position real), the decoder starts
// from `start` and appends the most likely token until it produces `stop` or has max_new tokens.
// Returns the generated tokens, without the start token. Under tensor parallelism every rank of the
// group calls it alike.
std::vector<int32_t> greedy_seq2seq(T5& model, const std::vector<int32_t>& input, int32_t start, int32_t stop,
                                    int64_t max_new);

}  // namespace kervan
