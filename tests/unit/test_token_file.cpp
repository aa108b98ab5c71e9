#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "datasets/format/llmc_token_file.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

class TokenFile : public TempDirTest {
 protected:
  // Writes a raw llm.c-style file with the given header fields and body.
  std::string raw(const char* name, int32_t magic, int32_t version, int32_t count, const std::vector<uint16_t>& body) {
    std::ofstream f(path(name), std::ios::binary);
    int32_t h[256] = {magic, version, count};
    f.write(reinterpret_cast<const char*>(h), sizeof(h));
    f.write(reinterpret_cast<const char*>(body.data()), body.size() * 2);
    return path(name);
  }
  // The UserError message of opening `p`, or "" when it opens.
  std::string error_of(const std::string& p, int64_t vocab) {
    try {
      LlmcTokenFile f(p, vocab);
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  }
};

TEST_F(TokenFile, RoundTrip) {
  std::vector<uint16_t> toks = {1, 2, 3, 65535, 0};
  write_llmc_token_file(path("ok.bin"), toks);
  EXPECT_FALSE(fs::exists(path("ok.bin.tmp")));
  LlmcTokenFile f(path("ok.bin"), 65536);
  ASSERT_EQ(f.size(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(f.tokens()[i], toks[i]);
}

TEST_F(TokenFile, BadInputsNameFileAndProblem) {
  auto has = [](const std::string& msg, const std::string& want) { return msg.find(want) != std::string::npos; };
  EXPECT_TRUE(has(error_of(raw("magic.bin", 12345, 1, 2, {1, 2}), 100), "magic.bin: bad magic 12345"));
  EXPECT_TRUE(has(error_of(raw("ver.bin", 20240520, 2, 2, {1, 2}), 100), "ver.bin: unsupported version 2"));
  EXPECT_TRUE(has(error_of(raw("trunc.bin", 20240520, 1, 5, {1, 2}), 100), "trunc.bin: header announces 5 tokens"));
  EXPECT_TRUE(has(error_of(raw("vocab.bin", 20240520, 1, 3, {1, 2, 100}), 100),
                  "vocab.bin: token 100 at position 2 is outside the model's vocabulary"));
  EXPECT_TRUE(has(error_of(path("missing.bin"), 100), "missing.bin: cannot open token file"));
  {
    std::ofstream f(path("short.bin"));
    f << "abc";
  }
  EXPECT_TRUE(has(error_of(path("short.bin"), 100), "short.bin: too short"));
  EXPECT_EQ(error_of(raw("fine.bin", 20240520, 1, 3, {1, 2, 99}), 100), "");
}

}  // namespace
}  // namespace kervan
