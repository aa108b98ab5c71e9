#include "datasets/loader/token_source.h"

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
  if (tokenizer_.vocab_size > static_cast<uint64_t>(model_vocab))
    throw UserError(path + ": the corpus's tokenizer '" + tokenizer_.name + "' has " +
                    std::to_string(tokenizer_.vocab_size) +
                    " tokens, more than model.vocab_size = " + std::to_string(model_vocab));
  shards_ = open_split_shards(path, manifest_, split, verify);
}

bool TokenSource::has_split(const std::string& split) const {
  const auto it = manifest_.splits.find(split);
  return it != manifest_.splits.end() && !it->second.empty();
}

std::vector<TokenSpan> TokenSource::spans() const {
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
