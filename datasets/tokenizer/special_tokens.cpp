#include "datasets/tokenizer/special_tokens.h"

#include "core/error.h"

namespace kervan {

SpecialTokens SpecialTokens::make(const std::string& family, int64_t base_vocab, int64_t eot,
                                  int64_t model_vocab) {
  if (family != "gpt" && family != "bert" && family != "t5")
    throw UserError("model.arch must be \"gpt\", \"bert\" or \"t5\", got \"" + family + "\"");
  SpecialTokens s{family, base_vocab, eot};
  if (base_vocab + s.count() > model_vocab) {
    if (s.count() == 0)  // GPT: no special tokens, the tokenizer's ids alone do not fit
      throw UserError("model.vocab_size (" + std::to_string(model_vocab) + ") is smaller than the tokenizer's " +
                      std::to_string(base_vocab) + " ids (it needs at least " + std::to_string(base_vocab) + ")");
    const std::string who = family == "bert" ? "BERT" : "T5";
    throw UserError("model.vocab_size (" + std::to_string(model_vocab) + ") has no room for " + who + "'s " +
                    std::to_string(s.count()) + " special tokens after the tokenizer's " +
                    std::to_string(base_vocab) + " ids (it needs at least " +
                    std::to_string(base_vocab + s.count()) + ")");
  }
  return s;
}

int64_t SpecialTokens::count() const {
  if (family == "bert") return 4;
  if (family == "t5") return 1 + kT5Sentinels;
  return 0;
}

std::string SpecialTokens::name(int64_t id) const {
  if (!is_special(id)) return "";
  const int64_t i = id - base_vocab;
  if (i == 0) return "[PAD]";
  if (family == "bert") return i == 1 ? "[CLS]" : i == 2 ? "[SEP]" : "[MASK]";
  return "<extra_id_" + std::to_string(i - 1) + ">";
}

}  // namespace kervan
