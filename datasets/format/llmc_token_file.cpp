#include "datasets/format/llmc_token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "datasets/format/atomic_file.h"
#include "datasets/format/mapped_files.h"

namespace kervan {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UserError(path + ": " + what);
}
}  // namespace

LlmcTokenFile::LlmcTokenFile(const std::string& path, int64_t vocab_size, Verify verify) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, std::string("cannot open token file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const size_t header_bytes = kHeaderInts * sizeof(int32_t);
  if (static_cast<size_t>(st.st_size) < header_bytes) {
    ::close(fd);
    fail(path,
         "too short for an llm.c token file header (" + std::to_string(st.st_size) + " bytes, need 1024)");
  }
  map_bytes_ = st.st_size;
  map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, std::string("mmap failed: ") + std::strerror(errno));
  }
  register_mapping(map_, map_bytes_, path);
  try {
    check(vocab_size, verify);
  } catch (...) {  // a bad file must not leave its mapping behind
    unregister_mapping(map_);
    ::munmap(map_, map_bytes_);
    map_ = nullptr;
    throw;
  }
}

void LlmcTokenFile::check(int64_t vocab_size, Verify verify) {
  const std::string& path = path_;
  const size_t header_bytes = kHeaderInts * sizeof(int32_t);
  int32_t header[kHeaderInts];
  std::memcpy(header, map_, header_bytes);
  if (header[0] != kMagic)
    fail(path, "bad magic " + std::to_string(header[0]) + " (an llm.c token file starts with " +
                   std::to_string(kMagic) + "; text is read only through `kervan prepare`, which makes a "
                   "corpus of it)");
  if (header[1] != kVersion)
    fail(path, "unsupported version " + std::to_string(header[1]) + " (expected 1: uint16 tokens)");
  count_ = header[2];
  const int64_t body = static_cast<int64_t>(map_bytes_ - header_bytes);
  if (count_ < 0 || body != count_ * 2)
    fail(path, "header announces " + std::to_string(header[2]) + " tokens (" +
                   std::to_string(2 * int64_t{header[2]}) + " bytes) but the body has " +
                   std::to_string(body) + " bytes (truncated or corrupt)");
  if (count_ == 0) fail(path, "holds no tokens (an empty llm.c token file)");
  tokens_ = reinterpret_cast<const uint16_t*>(static_cast<const char*>(map_) + header_bytes);
  for (int64_t i = 0; verify == Verify::Full && i < count_; ++i)
    if (tokens_[i] >= vocab_size)
      fail(path, "token " + std::to_string(tokens_[i]) + " at position " + std::to_string(i) +
                     " is outside the model's vocabulary (model.vocab_size = " + std::to_string(vocab_size) +
                     ")");
}

LlmcTokenFile::~LlmcTokenFile() {
  if (!map_) return;
  unregister_mapping(map_);
  ::munmap(map_, map_bytes_);
}

void write_llmc_token_file(const std::string& path, const std::vector<uint16_t>& tokens) {
  if (tokens.size() > static_cast<size_t>(INT32_MAX))
    throw UserError(path + ": too many tokens for one llm.c file");
  int32_t header[LlmcTokenFile::kHeaderInts] = {};
  header[0] = LlmcTokenFile::kMagic;
  header[1] = LlmcTokenFile::kVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  write_file_atomically(path, {std::string_view(reinterpret_cast<const char*>(header), sizeof(header)),
                               std::string_view(reinterpret_cast<const char*>(tokens.data()),
                                                tokens.size() * sizeof(uint16_t))});
}

}  // namespace kervan
