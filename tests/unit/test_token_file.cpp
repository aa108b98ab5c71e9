#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "datasets/llmc_token_file.h"
#include "datasets/window_sampler.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("kervan_tokfile_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const char* name) { return (dir / name).string(); }
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
  fs::path dir;
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

TEST(WindowSampler, EpochIsAPermutationAndOrderIsPure) {
  const int64_t n = 1001, T = 10;  // 100 windows
  WindowSampler a(n, T, 7), b(n, T, 7), c(n, T, 8);
  ASSERT_EQ(a.num_windows(), 100);
  std::set<int64_t> seen;
  bool differs_from_other_seed = false, differs_across_epochs = false;
  for (int64_t k = 0; k < 100; ++k) {
    const int64_t s = a.window_start(k);
    EXPECT_EQ(s % T, 0);
    EXPECT_LE(s + T + 1, n);
    seen.insert(s);
    differs_from_other_seed |= s != c.window_start(k);
  }
  EXPECT_EQ(seen.size(), 100u) << "a window repeated within the epoch";
  EXPECT_TRUE(differs_from_other_seed);
  // Resuming mid-run (a fresh sampler asked for sample k directly) gives the same windows.
  for (int64_t k = 250; k >= 0; k -= 7) EXPECT_EQ(b.window_start(k), a.window_start(k)) << k;
  for (int64_t k = 0; k < 100; ++k) differs_across_epochs |= a.window_start(k) != a.window_start(k + 100);
  EXPECT_TRUE(differs_across_epochs);
}

TEST(WindowSampler, TargetsAreInputsShiftedByOne) {
  std::vector<uint16_t> toks(41);
  for (int i = 0; i < 41; ++i) toks[i] = static_cast<uint16_t>(i);
  WindowSampler s(41, 8, 1);
  std::vector<int32_t> x(16), y(16);
  s.fill_batch(toks.data(), 3, 2, x.data(), y.data());
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(x[b * 8 + t], s.window_start(3 + b) + t);
      EXPECT_EQ(y[b * 8 + t], x[b * 8 + t] + 1);
    }
  EXPECT_THROW(WindowSampler(8, 8, 1), UserError);
}

}  // namespace
}  // namespace kervan
