#include "launcher/word_flags.h"

#include "datasets/loader/masked_lm.h"
#include "datasets/tokenizer/tokenizer_files.h"

namespace kervan {

std::vector<uint8_t> tokenizer_word_flags(const std::string& tokenizer, int64_t vocab) {
  std::vector<uint8_t> flags(vocab, 0);
  if (tokenizer == "bytes") {
    for (int64_t id = 0; id < std::min<int64_t>(vocab, 256); ++id)
      flags[id] = word_piece_flags(std::string(1, static_cast<char>(id)));
    return flags;
  }
  const BpeTokenizer bpe = load_bpe_tokenizer(tokenizer);
  for (int64_t id = 0; id < vocab; ++id) {
    const auto u = static_cast<uint32_t>(id);
    if (bpe.has_id(u) && bpe.special_id(bpe.decode({&u, 1})) < 0)
      flags[id] = word_piece_flags(bpe.decode({&u, 1}));
  }
  return flags;
}

}  // namespace kervan
