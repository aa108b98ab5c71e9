#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// Token files in the llm.c / nanoGPT format: a header of 256 int32 (magic 20240520, version 1,
// token count, the rest zero), then the tokens as little-endian uint16. Memory-mapped read-only.
class LlmcTokenFile {
 public:
  static constexpr int32_t kMagic = 20240520;
  static constexpr int32_t kVersion = 1;
  static constexpr int64_t kHeaderInts = 256;

  // Checks magic, version, that the body holds exactly the announced tokens, and (Verify::Full)
  // that every token is < vocab_size; any failure is a UserError naming the file and what is wrong.
  LlmcTokenFile(const std::string& path, int64_t vocab_size, Verify verify = Verify::Full);
  ~LlmcTokenFile();
  LlmcTokenFile(const LlmcTokenFile&) = delete;
  LlmcTokenFile& operator=(const LlmcTokenFile&) = delete;

  int64_t size() const { return count_; }
  const uint16_t* tokens() const { return tokens_; }
  const std::string& path() const { return path_; }

 private:
  // The checks of the constructor, on the mapped file.
  void check(int64_t vocab_size, Verify verify);

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint16_t* tokens_ = nullptr;
  int64_t count_ = 0;
};

// Writes tokens as an llm.c token file, atomically (a temporary file renamed into place), so a
// crash never leaves a partial file under `path`.
void write_llmc_token_file(const std::string& path, const std::vector<uint16_t>& tokens);

}  // namespace kervan
