#include "launcher/corpus_cmd.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "core/error.h"
#include "datasets/tokenizer/bpe_tokenizer.h"
#include "datasets/format/corpus_manifest.h"
#include "datasets/format/token_shard.h"
#include "datasets/tokenizer/tokenizer_files.h"

namespace kervan {

CorpusCommand::CorpusCommand(CLI::App& app) {
  auto* corpus = app.add_subcommand("corpus", "Look at a kervan corpus (a folder made by kervan prepare)");
  corpus->require_subcommand(1);
  verify_ = corpus->add_subcommand("verify", "Check every shard (manifest entry and checksum); print counts");
  verify_->add_option("dir", dir_, "Corpus folder")->required();
  cat_ = corpus->add_subcommand("cat", "Print the documents as text, each followed by a line <|endoftext|>");
  cat_->add_option("dir", dir_, "Corpus folder")->required();
  cat_->add_option("--split", split_, "train, val or all")->check(CLI::IsMember({"train", "val", "all"}));
}

int CorpusCommand::run() const {
  const CorpusManifest m = read_corpus_manifest(dir_);
  std::vector<std::string> splits;
  for (const auto& [name, shards] : m.splits)
    if (!shards.empty() && (split_ == "all" || split_ == name)) splits.push_back(name);
  if (verify_->parsed()) {
    std::string line = "{";
    for (const std::string& s : splits) {
      uint64_t docs = 0, tokens = 0;
      const auto shards = open_split_shards(dir_, m, s);
      for (const auto& sh : shards) {
        docs += sh->document_count();
        tokens += sh->token_count();
      }
      line += (line.size() > 1 ? "," : "") + std::string("\"") + s + "\":{\"shards\":" +
              std::to_string(shards.size()) + ",\"documents\":" + std::to_string(docs) +
              ",\"tokens\":" + std::to_string(tokens) + "}";
    }
    std::printf("%s}\n", line.c_str());
    return 0;
  }
  std::optional<BpeTokenizer> bpe;
  if (m.tokenizer.name != "bytes") bpe.emplace(load_bpe_tokenizer(m.tokenizer.name));
  std::vector<uint32_t> ids;
  for (const std::string& s : splits)
    for (const auto& shard : open_split_shards(dir_, m, s)) {
      const auto index = shard->document_index();
      for (size_t d = 0; d + 1 < index.size(); ++d) {
        ids.clear();
        for (uint64_t t = index[d]; t < index[d + 1]; ++t) ids.push_back(shard->token(t));
        if (!ids.empty() && ids.back() == m.tokenizer.eot_id) ids.pop_back();
        std::string text;
        if (bpe) {
          text = bpe->decode(ids);
        } else {
          for (uint32_t id : ids) text.push_back(static_cast<char>(id));
        }
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputs("\n<|endoftext|>\n", stdout);
      }
    }
  return 0;
}

}  // namespace kervan
