#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/loader/packed_sequences.h"
#include "datasets/format/token_shard.h"
#include "datasets/loader/token_store.h"

namespace kervan {

// Training tokens from one place: a split of a kervan corpus (a folder with manifest.json, every
// shard checked before use), an llm.c .bin token file (which has no splits), both memory-mapped,
// or a split of a corpus that a coordinator serves (a TokenStore).
class TokenSource {
 public:
  // Opens `path`; every token must be < model_vocab (the corpus's tokenizer must fit the model),
  // else a UserError naming the file. `verify`: see Verify (datasets/format/corpus_manifest.h).
  TokenSource(const std::string& path, const std::string& split, int64_t model_vocab,
              Verify verify = Verify::Full);
  // A served corpus split: `label` names it in messages (and as path()), `splits` are the corpus's
  // non-empty splits. The tokenizer must fit the model as above.
  TokenSource(std::string label, std::string split, TokenizerIdentity tokenizer,
              std::vector<std::string> splits, std::unique_ptr<TokenStore> store, int64_t model_vocab);

  const std::string& path() const { return path_; }
  const std::string& split() const { return split_; }
  bool is_corpus() const { return llmc_ == nullptr; }
  // The corpus's tokenizer (name empty for an llm.c file, which does not say).
  const TokenizerIdentity& tokenizer() const { return tokenizer_; }
  bool has_split(const std::string& split) const;
  std::vector<TokenSpan> spans() const;
  uint64_t num_tokens() const;
  // The store of a served split (its tokens must be required before reading); nullptr for local data.
  TokenStore* store() const { return store_.get(); }

 private:
  void check_vocabulary(int64_t model_vocab) const;

  std::string path_, split_;
  std::unique_ptr<LlmcTokenFile> llmc_;
  CorpusManifest manifest_;
  std::vector<std::unique_ptr<TokenShard>> shards_;
  TokenizerIdentity tokenizer_;
  std::vector<std::string> served_splits_;
  std::unique_ptr<TokenStore> store_;
};

}  // namespace kervan
