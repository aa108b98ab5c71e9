#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace kervan {

// A batch of training examples on the host, as the BERT and T5 objectives (and fine-tuning) make
// them: B sequences of T tokens for an encoder, with token types and lengths where they apply, and
// T5's decoder sequences of T_dec. targets (-1: nothing predicted) are [B, T], or [B, T_dec] with
// a decoder. A model's Batch points into these vectors; an empty vector is a field the example
// does not have (no token types, no padding, no decoder).
struct ExampleBatch {
  int64_t B = 0, T = 0, T_dec = 0;
  std::vector<int32_t> tokens, targets, token_types, lengths, decoder_tokens;

  int64_t predicted() const {
    return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
  }
};

}  // namespace kervan
