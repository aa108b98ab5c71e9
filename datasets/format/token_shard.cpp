#include "datasets/format/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "datasets/format/mapped_files.h"

namespace kervan {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UserError(path + ": " + what);
}

// The header bytes covered by the checksum: everything before the checksum field itself.
constexpr size_t kHashedHeaderBytes = offsetof(ShardHeader, checksum);

}  // namespace

uint64_t shard_token_section_bytes(uint64_t token_count, uint32_t token_bytes) {
  return (token_count * token_bytes + 7) / 8 * 8;
}

uint64_t shard_file_bytes(uint64_t token_count, uint64_t document_count, uint32_t token_bytes) {
  return sizeof(ShardHeader) + shard_token_section_bytes(token_count, token_bytes) + (document_count + 1) * 8;
}

uint32_t token_bytes_for_vocab(uint64_t vocab_size) {
  return vocab_size <= 65536 ? 2 : 4;
}

// ---- reading ----

TokenShard::TokenShard(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, std::string("cannot open shard: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  if (static_cast<size_t>(st.st_size) < sizeof(ShardHeader)) {
    ::close(fd);
    fail(path, "too short for a shard header (" + std::to_string(st.st_size) + " bytes, need 64)");
  }
  map_bytes_ = st.st_size;
  map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, std::string("mmap failed: ") + std::strerror(errno));
  }
  register_mapping(map_, map_bytes_, path);
  try {
    std::memcpy(&header_, map_, sizeof(header_));
    if (std::memcmp(header_.magic, ShardHeader::kMagic, sizeof(header_.magic)) != 0)
      fail(path, "bad magic (not a kervan token shard)");
    if (header_.version != ShardHeader::kVersion)
      fail(path, "unsupported shard version " + std::to_string(header_.version) +
                     " (this kervan reads version " + std::to_string(ShardHeader::kVersion) + ")");
    if (header_.token_bytes != 2 && header_.token_bytes != 4)
      fail(path, "bad token width " + std::to_string(header_.token_bytes) + " (expected 2 or 4 bytes)");
    // Bound the counts before multiplying them, so a corrupt header cannot overflow the size check.
    const uint64_t expected =
        header_.token_count < (uint64_t{1} << 48) && header_.document_count < (uint64_t{1} << 48)
            ? shard_file_bytes(header_.token_count, header_.document_count, header_.token_bytes)
            : 0;
    if (expected != map_bytes_)
      fail(path, "size mismatch: the header announces " + std::to_string(header_.token_count) +
                     " tokens and " + std::to_string(header_.document_count) + " documents (" +
                     std::to_string(expected) + " bytes) but the file has " + std::to_string(map_bytes_) +
                     " bytes (truncated or corrupt)");
    doc_index_ = reinterpret_cast<const uint64_t*>(
        static_cast<const char*>(map_) + sizeof(ShardHeader) +
        shard_token_section_bytes(header_.token_count, header_.token_bytes));
  } catch (...) {  // a bad shard must not leave its mapping behind
    unregister_mapping(map_);
    ::munmap(map_, map_bytes_);
    map_ = nullptr;
    throw;
  }
}

TokenShard::~TokenShard() {
  if (!map_) return;
  unregister_mapping(map_);
  ::munmap(map_, map_bytes_);
}

uint32_t TokenShard::token(uint64_t i) const {
  return header_.token_bytes == 2 ? static_cast<const uint16_t*>(token_data())[i]
                                  : static_cast<const uint32_t*>(token_data())[i];
}

void TokenShard::verify() const {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, token_data(), map_bytes_ - sizeof(ShardHeader));
  XXH3_64bits_update(state, &header_, kHashedHeaderBytes);
  const uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (sum != header_.checksum) fail(path_, "checksum mismatch (the shard is corrupt; prepare it again)");
  uint32_t largest = 0;  // a shard from a foreign or buggy writer must not index past the vocabulary
  if (header_.token_bytes == 2) {
    const auto* t = static_cast<const uint16_t*>(token_data());
    for (uint64_t i = 0; i < header_.token_count; ++i) largest = std::max<uint32_t>(largest, t[i]);
  } else {
    const auto* t = static_cast<const uint32_t*>(token_data());
    for (uint64_t i = 0; i < header_.token_count; ++i) largest = std::max(largest, t[i]);
  }
  if (header_.token_count > 0 && largest >= header_.vocab_size)
    fail(path_, "token " + std::to_string(largest) + " is outside the shard's vocabulary (size " +
                    std::to_string(header_.vocab_size) + ")");
  const std::span<const uint64_t> index = document_index();
  if (index.front() != 0 || index.back() != header_.token_count)
    fail(path_, "document index does not span the tokens");
  for (size_t d = 1; d < index.size(); ++d)
    if (index[d] < index[d - 1])
      fail(path_, "document index is not ascending at document " + std::to_string(d));
}

// ---- writing ----

TokenShardWriter::TokenShardWriter(const std::string& path, uint64_t vocab_size)
    : path_(path),
      tmp_path_(path + ".tmp"),
      vocab_size_(vocab_size),
      token_bytes_(token_bytes_for_vocab(vocab_size)) {
  if (vocab_size == 0 || vocab_size > (uint64_t{1} << 32)) fail(path, "vocabulary size out of range");
  hash_state_ = XXH3_createState();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(hash_state_));
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) {
    const int err = errno;
    XXH3_freeState(static_cast<XXH3_state_t*>(hash_state_));
    throw_io_error(tmp_path_, "cannot create", err);
  }
  const ShardHeader placeholder{};  // the real header is written by finish()
  write(&placeholder, sizeof(placeholder), false);
}

TokenShardWriter::~TokenShardWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
  XXH3_freeState(static_cast<XXH3_state_t*>(hash_state_));
}

void TokenShardWriter::write(const void* data, size_t bytes, bool hash) {
  if (std::fwrite(data, 1, bytes, file_) != bytes)
    throw_io_error(tmp_path_, "write failed", errno);
  if (hash) XXH3_64bits_update(static_cast<XXH3_state_t*>(hash_state_), data, bytes);
}

void TokenShardWriter::add_document(std::span<const uint32_t> tokens) {
  buffer_.resize(tokens.size() * token_bytes_);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab_size_)
      fail(path_, "token " + std::to_string(tokens[i]) + " is outside the vocabulary (size " +
                      std::to_string(vocab_size_) + ")");
    if (token_bytes_ == 2) {
      const uint16_t v = static_cast<uint16_t>(tokens[i]);
      std::memcpy(buffer_.data() + 2 * i, &v, 2);
    } else {
      std::memcpy(buffer_.data() + 4 * i, &tokens[i], 4);
    }
  }
  write(buffer_.data(), buffer_.size(), true);
  token_count_ += tokens.size();
  doc_index_.push_back(token_count_);
}

ShardHeader TokenShardWriter::finish() {
  if (!file_) fail(path_, "shard already finished");
  const uint64_t padding =
      shard_token_section_bytes(token_count_, token_bytes_) - token_count_ * token_bytes_;
  const uint64_t zeros = 0;
  write(&zeros, padding, true);
  write(doc_index_.data(), doc_index_.size() * sizeof(uint64_t), true);

  ShardHeader h{};
  std::memcpy(h.magic, ShardHeader::kMagic, sizeof(h.magic));
  h.version = ShardHeader::kVersion;
  h.token_bytes = token_bytes_;
  h.token_count = token_count_;
  h.document_count = document_count();
  h.vocab_size = vocab_size_;
  XXH3_64bits_update(static_cast<XXH3_state_t*>(hash_state_), &h, kHashedHeaderBytes);
  h.checksum = XXH3_64bits_digest(static_cast<XXH3_state_t*>(hash_state_));

  bool ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(&h, sizeof(h), 1, file_) == 1;
  ok = std::fflush(file_) == 0 && ok && ::fsync(fileno(file_)) == 0;
  ok = std::fclose(file_) == 0 && ok;
  file_ = nullptr;
  if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_path_.c_str());
    throw_io_error(path_, "write failed", err);
  }
  return h;
}

}  // namespace kervan
