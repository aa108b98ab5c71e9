#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/tokenizer/bpe_tokenizer.h"
#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The tokenizer `kervan prepare` runs on each document: the document's tokens, then the
// end-of-text token. Safe to call from several threads at once, each with its own cache.
//   "gpt2"  GPT-2 BPE (scripts/get-tokenizer.sh gpt2), vocabulary 50257, end of text 50256.
//           "<|endoftext|>" inside a document is ordinary text, never the special token;
//           ill-formed UTF-8 is repaired to U+FFFD.
//   "bytes" one token per byte (0-255), end of text 256, vocabulary 257. Bytes are kept as they
//           are (no UTF-8 repair).
//   FOLDER  a GPT-2 style vocabulary (encoder.json + vocab.bpe) whose end of text is the special
//           token "<|endoftext|>".
class DocumentTokenizer {
 public:
  static DocumentTokenizer load(const std::string& name_or_dir);

  const TokenizerIdentity& identity() const { return identity_; }
  // Appends the document's tokens and the end-of-text token to `out`. `cache` remembers BPE
  // results across the documents one thread encodes.
  void encode(std::string_view text, BpeTokenizer::Cache& cache, std::vector<uint32_t>& out) const;

 private:
  TokenizerIdentity identity_;
  std::shared_ptr<const BpeTokenizer> bpe_;  // null for "bytes"
};

}  // namespace kervan
