#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "datasets/format/token_shard.h"
#include "datasets/prepare/unit_record.h"

namespace kervan {

// Writes one work unit's documents, in the order given, into the unit's own shards in dir:
// "train-UUUUU-PPPPP.kvs" and "val-UUUUU-PPPPP.kvs", where P counts the shards of that split. A
// new shard starts before a document that would take the open one past shard_tokens; a document
// is never split (one longer than shard_tokens fills a shard alone). Counts each source's
// documents and skipped lines for the unit's record. Destroying an unfinished writer leaves no
// partial shard under a final name (TokenShardWriter).
class UnitShardWriter {
 public:
  // `sources`: the unit's input files, their counts zero; indexes below are into this list.
  UnitShardWriter(std::string dir, size_t unit, uint64_t vocab_size, uint64_t shard_tokens,
                  std::vector<SourceEntry> sources);

  void add_document(size_t source, bool val, std::span<const uint32_t> tokens);
  void count_skipped_line(size_t source) { record_.sources[source].skipped_lines++; }

  // Completes the open shards; the record lists every shard and the sources' counts.
  UnitRecord finish();

 private:
  // One split's shards: those complete, and the one being written.
  struct Split {
    const char* name;
    std::vector<ShardEntry> done{};
    std::unique_ptr<TokenShardWriter> writer{};
    std::string file{};
  };
  void close_shard(Split& split);

  std::string dir_;
  size_t unit_;
  uint64_t vocab_size_, shard_tokens_;
  UnitRecord record_;
  Split train_{"train"}, val_{"val"};
};

}  // namespace kervan
