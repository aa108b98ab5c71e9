#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/format/token_shard.h"
#include "datasets/loader/packed_sequences.h"

namespace kervan {

// Training tokens from one place: a split of a kervan corpus (a folder with manifest.json, every
// shard checked before use) or an llm.c .bin token file (which has no splits). Memory-mapped.
class TokenSource {
 public:
  // Opens `path`; every token must be < model_vocab (the corpus's tokenizer must fit the model),
  // else a UserError naming the file. `verify`: see Verify (datasets/format/corpus_manifest.h).
  TokenSource(const std::string& path, const std::string& split, int64_t model_vocab,
              Verify verify = Verify::Full);

  const std::string& path() const { return path_; }
  const std::string& split() const { return split_; }
  bool is_corpus() const { return llmc_ == nullptr; }
  // The corpus's tokenizer (name empty for an llm.c file, which does not say).
  const TokenizerIdentity& tokenizer() const { return tokenizer_; }
  bool has_split(const std::string& split) const;
  std::vector<TokenSpan> spans() const;
  uint64_t num_tokens() const;

 private:
  std::string path_, split_;
  std::unique_ptr<LlmcTokenFile> llmc_;
  CorpusManifest manifest_;
  std::vector<std::unique_ptr<TokenShard>> shards_;
  TokenizerIdentity tokenizer_;
};

}  // namespace kervan
