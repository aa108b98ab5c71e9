#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datasets/tokenizer/bpe_tokenizer.h"

namespace kervan {

// Turns the sample prompt into ids and generated ids back into text, with the tokenizer the
// training data was made with: "gpt2" or a folder (BPE), "bytes" (one token per byte; 256 is the
// end-of-text token) or "none" (ids shown as numbers). Ids a tokenizer does not have show as
// <|id:N|>.
class TextCodec {
 public:
  explicit TextCodec(const std::string& tokenizer);
  const std::string& name() const { return name_; }
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // The tokenizer's vocabulary (bytes: 257) and end-of-text id (bytes: 256); 0 and -1 for "none".
  int64_t vocab_size() const;
  int64_t eot() const;

 private:
  std::string name_;
  std::optional<BpeTokenizer> bpe_;
};

}  // namespace kervan
