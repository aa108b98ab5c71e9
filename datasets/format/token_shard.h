#pragma once
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace kervan {

// kervan's token shard (.kvs): one memory-mappable file of whole documents.
//
//   offset 0   ShardHeader (64 bytes, little-endian)
//   offset 64  tokens: token_count x token_bytes (uint16 when the vocabulary fits, else uint32),
//              zero-padded to a multiple of 8 bytes
//   then       document index: document_count + 1 uint64 token offsets (first 0, last token_count);
//              document d is tokens [index[d], index[d + 1])
//
// checksum = XXH3-64 of (tokens with padding, document index, header bytes 0..55), in that order, so
// a writer can stream the body and hash the header last. The file size follows from the header, so
// truncation is caught before the checksum is computed.
struct ShardHeader {
  static constexpr char kMagic[8] = {'K', 'V', 'S', 'H', 'A', 'R', 'D', '\0'};
  static constexpr uint32_t kVersion = 1;

  char magic[8];
  uint32_t version;
  uint32_t token_bytes;  // 2 or 4
  uint64_t token_count;
  uint64_t document_count;
  uint64_t vocab_size;  // every token is < vocab_size
  uint64_t reserved[2];
  uint64_t checksum;
};
static_assert(sizeof(ShardHeader) == 64);

// Bytes of the token section (padded) and of the whole file for a header's counts.
uint64_t shard_token_section_bytes(uint64_t token_count, uint32_t token_bytes);
uint64_t shard_file_bytes(uint64_t token_count, uint64_t document_count, uint32_t token_bytes);
// 2 when every id of the vocabulary fits in uint16, else 4.
uint32_t token_bytes_for_vocab(uint64_t vocab_size);

// A shard, memory-mapped read-only. Opening checks magic, version, token width and that the file
// size matches the header; verify() additionally recomputes the checksum and checks the document
// index. Every failure is a UserError naming the file.
class TokenShard {
 public:
  explicit TokenShard(const std::string& path);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  void verify() const;

  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  uint64_t token_count() const { return header_.token_count; }
  uint64_t document_count() const { return header_.document_count; }
  uint32_t token_bytes() const { return header_.token_bytes; }
  uint64_t file_bytes() const { return map_bytes_; }
  // The raw token section: uint16_t or uint32_t elements per token_bytes().
  const void* token_data() const { return static_cast<const char*>(map_) + sizeof(ShardHeader); }
  uint32_t token(uint64_t i) const;
  std::span<const uint64_t> document_index() const { return {doc_index_, header_.document_count + 1}; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  ShardHeader header_{};
  const uint64_t* doc_index_ = nullptr;
};

// Streams documents into a shard. Tokens go to `path + ".tmp"` as they arrive (memory holds only
// the document index); finish() writes the header, fsyncs and renames the file into place, so a
// file under `path` is always complete. Destroying an unfinished writer removes the temporary file.
class TokenShardWriter {
 public:
  TokenShardWriter(const std::string& path, uint64_t vocab_size);
  ~TokenShardWriter();
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // Appends one document; every token must be < vocab_size (else UserError).
  void add_document(std::span<const uint32_t> tokens);
  uint64_t token_count() const { return token_count_; }
  uint64_t document_count() const { return doc_index_.size() - 1; }
  // Completes the file and returns its header (with the checksum).
  ShardHeader finish();

 private:
  void write(const void* data, size_t bytes, bool hash);

  std::string path_, tmp_path_;
  FILE* file_ = nullptr;
  uint64_t vocab_size_;
  uint32_t token_bytes_;
  uint64_t token_count_ = 0;
  std::vector<uint64_t> doc_index_{0};
  std::vector<unsigned char> buffer_;
  void* hash_state_ = nullptr;  // XXH3_state_t*, kept opaque so xxhash.h stays out of this header
};

}  // namespace kervan
