#include "datasets/loader/token_source.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/paths.h"

namespace kervan {

TokenSource::TokenSource(const std::string& path, const std::string& split, int64_t model_vocab,
                         Verify verify)
    : path_(path), split_(split) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    if (!std::filesystem::exists(path, ec) && (!ec || ec == std::errc::no_such_file_or_directory))
      throw UserError(path + ": no such corpus folder or token file");
    require_file(path, "data.path (a corpus folder or an llm.c token file)");
    if (split != "train")
      throw UserError(path + ": an llm.c token file has no '" + split +
                      "' split (prepare a kervan corpus for that)");
    llmc_ = std::make_unique<LlmcTokenFile>(path, model_vocab, verify);
    return;
  }
  manifest_ = read_corpus_manifest(path);
  tokenizer_ = manifest_.tokenizer;
  check_vocabulary(model_vocab);
  shards_ = open_split_shards(path, manifest_, split, verify);
}

TokenSource::TokenSource(std::string label, std::string split, TokenizerIdentity tokenizer,
                         std::vector<std::string> splits, std::unique_ptr<TokenStore> store,
                         int64_t model_vocab)
    : path_(std::move(label)),
      split_(std::move(split)),
      tokenizer_(std::move(tokenizer)),
      served_splits_(std::move(splits)),
      store_(std::move(store)) {
  check_vocabulary(model_vocab);
}

void TokenSource::check_vocabulary(int64_t model_vocab) const {
  if (tokenizer_.vocab_size > static_cast<uint64_t>(model_vocab))
    throw UserError(path_ + ": the corpus's tokenizer '" + tokenizer_.name + "' has " +
                    std::to_string(tokenizer_.vocab_size) +
                    " tokens, more than model.vocab_size = " + std::to_string(model_vocab));
}

bool TokenSource::has_split(const std::string& split) const {
  if (store_) return std::find(served_splits_.begin(), served_splits_.end(), split) != served_splits_.end();
  const auto it = manifest_.splits.find(split);
  return it != manifest_.splits.end() && !it->second.empty();
}

std::vector<TokenSpan> TokenSource::spans() const {
  if (store_) return store_->spans();
  if (llmc_) return {{llmc_->tokens(), 2, static_cast<uint64_t>(llmc_->size())}};
  std::vector<TokenSpan> out;
  for (const auto& s : shards_) out.push_back({s->token_data(), s->token_bytes(), s->token_count()});
  return out;
}

uint64_t TokenSource::num_tokens() const {
  uint64_t n = 0;
  for (const TokenSpan& s : spans()) n += s.count;
  return n;
}

}  // namespace kervan
