#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/format/token_shard.h"

namespace kervan {

// A corpus is a folder of token shards plus manifest.json, which `kervan prepare` writes last (and
// atomically): a folder without a manifest is an unfinished corpus, never a smaller one.
//
// manifest.json:
//   {"format": "kervan-corpus", "version": 1,
//    "tokenizer": {"name": "gpt2", "vocab_size": 50257, "eot_id": 50256, "sha256": "..."},
//    "splits": {"train": [{"file": "train-00000.kvs", "tokens": T, "documents": D, "bytes": B,
//                          "checksum": "<xxh3-64 hex>"}, ...],
//               "val": [...]},
//    "sources": [{"path": "...", "bytes": N, "documents": D, "skipped_lines": S}, ...],
//    "created_by": "kervan prepare ..."}
struct TokenizerIdentity {
  std::string name;  // "gpt2", "bytes", or the folder a custom vocabulary came from
  uint64_t vocab_size = 0;
  uint64_t eot_id = 0;
  std::string sha256;  // of encoder.json then vocab.bpe ("<enc>:<bpe>"); empty for "bytes"
  bool operator==(const TokenizerIdentity&) const = default;
};

struct ShardEntry {
  std::string file;  // relative to the corpus folder
  uint64_t tokens = 0, documents = 0, bytes = 0, checksum = 0;
};

struct SourceEntry {
  std::string path;
  uint64_t bytes = 0, documents = 0, skipped_lines = 0;
};

struct CorpusManifest {
  static constexpr const char* kFileName = "manifest.json";
  static constexpr int kVersion = 1;

  TokenizerIdentity tokenizer;
  std::map<std::string, std::vector<ShardEntry>> splits;  // "train", "val"
  std::vector<SourceEntry> sources;
  std::string created_by;
  // A checksum of what was asked for (inputs with their sizes and times, tokenizer, options): a
  // rerun that asks for something else is refused instead of taking the old corpus as its own.
  // Empty in corpora made before it existed.
  std::string request;

  uint64_t split_tokens(const std::string& split) const;
  uint64_t documents() const;      // over all splits
  uint64_t source_bytes() const;   // input files' size on disk
  uint64_t skipped_lines() const;  // bad .jsonl lines skipped, over all sources
};

// Reads dir/manifest.json; a missing file, bad JSON or a missing/mistyped field is a UserError
// naming the file and the field.
CorpusManifest read_corpus_manifest(const std::string& dir);
// Writes dir/manifest.json atomically (temporary file, fsync, rename).
void write_corpus_manifest(const std::string& dir, const CorpusManifest& manifest);

// How much of a file to check when opening it. Full reads every byte (checksums, every token id);
// HeaderOnly checks what costs no read of the body (header, sizes, the manifest entry): for a
// file that another process on this node has just verified in full.
enum class Verify { Full, HeaderOnly };

// Maps the shards of one split and checks each against its manifest entry (present, same size,
// token and document counts and checksum) and, with Verify::Full, against its own checksum, so a
// corrupt or missing shard stops the job before training starts, named.
std::vector<std::unique_ptr<TokenShard>> open_split_shards(const std::string& dir,
                                                           const CorpusManifest& manifest,
                                                           const std::string& split,
                                                           Verify verify = Verify::Full);

std::string checksum_hex(uint64_t checksum);

}  // namespace kervan
