#include "datasets/prepare/unit_shard_writer.h"

#include <cstdio>
#include <filesystem>
#include <utility>

namespace kervan {

namespace {

std::string shard_file_name(const char* split, size_t unit, size_t part) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s-%05zu-%05zu.kvs", split, unit, part);
  return buf;
}

}  // namespace

UnitShardWriter::UnitShardWriter(std::string dir, size_t unit, uint64_t vocab_size, uint64_t shard_tokens,
                                 std::vector<SourceEntry> sources)
    : dir_(std::move(dir)), unit_(unit), vocab_size_(vocab_size), shard_tokens_(shard_tokens) {
  record_.sources = std::move(sources);
}

void UnitShardWriter::add_document(size_t source, bool val, std::span<const uint32_t> tokens) {
  record_.sources[source].documents++;
  Split& split = val ? val_ : train_;
  if (split.writer && split.writer->document_count() > 0 && split.writer->token_count() + tokens.size() > shard_tokens_)
    close_shard(split);
  if (!split.writer) {
    split.file = shard_file_name(split.name, unit_, split.done.size());
    split.writer = std::make_unique<TokenShardWriter>(dir_ + "/" + split.file, vocab_size_);
  }
  split.writer->add_document(tokens);
}

void UnitShardWriter::close_shard(Split& split) {
  if (!split.writer) return;
  const ShardHeader h = split.writer->finish();
  split.writer.reset();
  const uint64_t bytes = std::filesystem::file_size(dir_ + "/" + split.file);
  split.done.push_back({split.file, h.token_count, h.document_count, bytes, h.checksum});
}

UnitRecord UnitShardWriter::finish() {
  close_shard(train_);
  close_shard(val_);
  record_.train = std::move(train_.done);
  record_.val = std::move(val_.done);
  return std::move(record_);
}

}  // namespace kervan
