#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"
#include "datasets/format/token_shard.h"
#include "proto/coordinator.pb.h"

namespace kervan {

// Where `kervan coordinator --corpus [NAME=]DIR` finds a corpus and what it serves it as (NAME
// defaults to DIR's last path component).
struct CorpusSpec {
  std::string name, dir;
  static CorpusSpec parse(const std::string& arg);
};

// The corpora a coordinator serves, opened once at start-up: every shard memory-mapped and
// verified against its manifest entry and its own checksum (open_split_shards), so workers trust
// the coordinator instead of each re-reading the corpus. After construction nothing here changes:
// requests read it from any thread without a lock, and token data comes from the page cache.
class CorpusCatalog {
 public:
  struct Split {
    std::string name;
    std::vector<std::unique_ptr<TokenShard>> shards;
  };
  struct Corpus {
    std::string name, dir;
    CorpusManifest manifest;
    std::vector<Split> splits;  // the manifest's non-empty splits, in name order
  };

  // Every failure (missing manifest, a shard that does not match it, duplicate names) is a
  // UserError naming the corpus folder or the shard. No corpora is fine (a coordinator of a
  // distributed prepare only leases work units).
  explicit CorpusCatalog(const std::vector<CorpusSpec>& specs);

  const std::vector<Corpus>& corpora() const { return corpora_; }
  // The split, or nullptr when the corpus index or split name is unknown.
  const Split* split(uint32_t corpus, const std::string& name) const;
  // XXH3-64 over every corpus's name, shard files and checksums, in order: a journal or a
  // worker's cache from other data does not match.
  uint64_t fingerprint() const { return fingerprint_; }
  uint64_t train_tokens() const;  // over every corpus
  // The ManifestResponse, built and serialized once.
  const coordinator::v1::ManifestResponse& manifest() const { return manifest_; }
  const std::string& manifest_bytes() const { return manifest_bytes_; }

 private:
  std::vector<Corpus> corpora_;
  uint64_t fingerprint_ = 0;
  coordinator::v1::ManifestResponse manifest_;
  std::string manifest_bytes_;
};

// The ManifestResponse entry of one corpus (also what the memory benchmark sizes).
coordinator::v1::CorpusInfo corpus_info(const std::string& name, const CorpusManifest& manifest);

}  // namespace kervan
