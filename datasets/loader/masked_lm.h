#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "datasets/loader/data_loader.h"
#include "datasets/loader/example_batch.h"
#include "datasets/tokenizer/special_tokens.h"

namespace kervan {

struct MaskedLmOptions {
  double mask_fraction = 0.15;  // of a sequence's content tokens, predicted
  double replace_mask = 0.8;    // of the predicted tokens: shown as [MASK]
  double replace_random = 0.1;  // shown as a random ordinary token; the rest shown as they are
  bool whole_word = false;      // predict whole words (every piece of a chosen word)
  uint64_t seed = 0;
};

// Whole-word masking needs to know where words begin. A token continues the word of the token
// before it when it starts with a word character and the one before ends with one (a word
// character: a letter or digit, or any byte of a multi-byte UTF-8 character). flags[id] holds
// these two facts per token id; word_piece_flags computes them from a token's bytes.
enum WordPieceFlag : uint8_t { kStartsInWord = 1, kEndsInWord = 2 };
uint8_t word_piece_flags(std::string_view token_bytes);

// BERT's masked-LM examples, made in the loader from the packed windows, deterministically from
// (seed, sample index), so that any data-parallel split and any resume see the same examples.
// Sample k is window k's T - 2 tokens w (the loader's seq_len is T - 3, see loader_seq_len) as
//   tokens  [CLS] w_0 .. w_{T-3} [SEP]     token types 0, no padding
// with n = max(1, round(mask_fraction * (T - 2))) content positions predicted (Google BERT's
// create_pretraining_data): the content's units (tokens, or words with whole_word) in a random
// order, each taken while the count stays within n (a word that would overshoot is skipped).
// A predicted position's target is its token; its input becomes [MASK] with probability 0.8, a
// uniformly random ordinary token (never a special one) with 0.1, and stays as it is otherwise.
// Other positions have target -1.
class MaskedLm {
 public:
  // word_flags: per token id (WordPieceFlag), needed with whole_word.
  MaskedLm(DataLoader& windows, int64_t seq_len, const SpecialTokens& specials, const MaskedLmOptions& opt,
           std::vector<uint8_t> word_flags = {});
  // The loader's seq_len for a model sequence of seq_len tokens (windows of seq_len - 2 tokens).
  static int64_t loader_seq_len(int64_t seq_len) { return seq_len - 3; }

  // Examples first_sample .. first_sample + batch - 1 into out (tokens, token_types, targets).
  void fill_batch(int64_t first_sample, int64_t batch, ExampleBatch& out);
  // One example from the T - 2 tokens of `window` as sample `sample`: tokens and targets [T].
  void make_example(const int32_t* window, int64_t sample, int32_t* tokens, int32_t* targets) const;
  int64_t predicted_per_sequence() const { return to_predict_; }

 private:
  DataLoader& windows_;
  int64_t seq_len_, to_predict_;
  SpecialTokens specials_;
  MaskedLmOptions opt_;
  std::vector<uint8_t> word_flags_;
  std::vector<int32_t> window_;
};

}  // namespace kervan
