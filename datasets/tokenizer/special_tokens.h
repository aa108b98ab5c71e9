#pragma once
#include <cstdint>
#include <string>

namespace kervan {

// The special tokens BERT and T5 need, added to a tokenizer in one documented way: after its
// vocabulary. A tokenizer of V ids (GPT-2's 50257, bytes' 257, a trained BPE's) keeps them all, and
// the family's tokens take the ids right after, so the model's vocabulary must hold V + count():
//
//   BERT:  [PAD] = V, [CLS] = V + 1, [SEP] = V + 2, [MASK] = V + 3                (4 tokens)
//   T5:    [PAD] = V (also the decoder's start token), <extra_id_i> = V + 1 + i
//          for the 100 sentinels i = 0..99                                          (101 tokens)
//          and the tokenizer's own end-of-text token as the end of a sequence (</s>)
//   GPT:   none (fine-tuning separates input and target with the end-of-text token)
//
// Corpora stay as prepared (only ids < V); the objectives (datasets/loader) insert the special
// ids. Names and ids are what `kervan` shows when it decodes tokens.
struct SpecialTokens {
  std::string family;      // "gpt", "bert", "t5"
  int64_t base_vocab = 0;  // V: the tokenizer's vocabulary
  int64_t eot = -1;        // the tokenizer's end-of-text id

  static constexpr int kT5Sentinels = 100;

  // Throws UserError when the family is unknown, or when model_vocab has no room for the tokens
  // ("model.vocab_size (X) has no room for BERT's 4 special tokens after the tokenizer's V ids").
  static SpecialTokens make(const std::string& family, int64_t base_vocab, int64_t eot, int64_t model_vocab);

  int64_t count() const;  // 0, 4 or 101
  int32_t pad() const { return static_cast<int32_t>(base_vocab); }
  int32_t cls() const { return static_cast<int32_t>(base_vocab + 1); }
  int32_t sep() const { return static_cast<int32_t>(base_vocab + 2); }
  int32_t mask() const { return static_cast<int32_t>(base_vocab + 3); }
  int32_t sentinel(int i) const { return static_cast<int32_t>(base_vocab + 1 + i); }
  bool is_special(int64_t id) const { return id >= base_vocab && id < base_vocab + count(); }
  // "[MASK]", "<extra_id_7>", ...; empty for an ordinary id.
  std::string name(int64_t id) const;
};

}  // namespace kervan
