#include "datasets/prepare/llmc_corpus.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/format/token_shard.h"

namespace kervan {

namespace fs = std::filesystem;

CorpusManifest wrap_llmc_files(const std::vector<std::string>& files, const std::string& dir,
                               const TokenizerIdentity& tokenizer, const std::string& created_by,
                               const std::string& request) {
  CorpusManifest m;
  m.tokenizer = tokenizer;
  m.created_by = created_by;
  m.request = request;
  m.splits["train"];
  uint64_t documents = 0;
  std::vector<uint32_t> doc;
  for (size_t i = 0; i < files.size(); ++i) {
    const LlmcTokenFile in(files[i], static_cast<int64_t>(tokenizer.vocab_size));
    SourceEntry source{files[i], fs::file_size(files[i]), 0, 0};
    char name[32];
    std::snprintf(name, sizeof(name), "train-%05zu.kvs", i);
    TokenShardWriter w(dir + "/" + name, tokenizer.vocab_size);
    doc.clear();
    for (int64_t t = 0; t < in.size(); ++t) {
      doc.push_back(in.tokens()[t]);
      if (doc.back() == tokenizer.eot_id || t + 1 == in.size()) {
        w.add_document(doc);
        doc.clear();
      }
    }
    source.documents = w.document_count();
    documents += source.documents;
    const ShardHeader h = w.finish();
    m.splits["train"].push_back(
        {name, h.token_count, h.document_count, fs::file_size(dir + "/" + name), h.checksum});
    m.sources.push_back(source);
  }
  if (documents == 0) throw UserError("the llm.c token files hold no tokens");
  return m;
}

}  // namespace kervan
