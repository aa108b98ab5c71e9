#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"
#include "datasets/format/token_shard.h"

namespace kervan {

// Writes a kervan corpus into `dir`: for each split, shards of the given token counts holding
// documents of up to 37 tokens, token values a pure function of (seed, split, shard, position) below
// vocab - 1 and each document ending in eot = vocab - 1. Returns the manifest.
inline CorpusManifest write_small_corpus(const std::filesystem::path& dir, uint64_t vocab,
                                         const std::vector<uint64_t>& train_shards,
                                         const std::vector<uint64_t>& val_shards = {}, uint64_t seed = 1) {
  std::filesystem::create_directories(dir);
  CorpusManifest m;
  m.tokenizer = {"test", vocab, vocab - 1, ""};
  m.created_by = "test";
  for (const auto& [split, sizes] :
       {std::pair{std::string("train"), train_shards}, std::pair{std::string("val"), val_shards}}) {
    m.splits[split];
    for (size_t s = 0; s < sizes.size(); ++s) {
      const std::string file = split + "-" + std::to_string(s) + ".kvs";
      TokenShardWriter w((dir / file).string(), vocab);
      uint64_t x = seed * 0x9E3779B97F4A7C15ull + s * 1000003 + (split == "val" ? 77 : 0);
      std::vector<uint32_t> doc;
      for (uint64_t i = 0; i < sizes[s]; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const bool end = doc.size() == 36 || i + 1 == sizes[s];
        doc.push_back(end ? static_cast<uint32_t>(vocab - 1)
                          : static_cast<uint32_t>((x >> 33) % (vocab - 1)));
        if (end) {
          w.add_document(doc);
          doc.clear();
        }
      }
      const ShardHeader h = w.finish();
      m.splits[split].push_back(
          {file, h.token_count, h.document_count, std::filesystem::file_size(dir / file), h.checksum});
    }
  }
  write_corpus_manifest(dir.string(), m);
  return m;
}

}  // namespace kervan
