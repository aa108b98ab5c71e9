// Generation with GPT's KV cache against the full recompute it replaces: the logits of a prefill
// and of every cached step equal those of a forward over the whole context, and generate() gives
// the same tokens with and without the cache (greedy and seeded sampling, through the sliding
// window past the cache's end).
//
// Tolerance: fp32 on both paths with the same math; only the GEMM shapes differ (one row against
// the cached keys instead of T rows, so OpenBLAS blocks and sums in another order), which moves a
// logit by a few float roundings of its O(1) terms: |cached - full| <= 1e-5 absolute (logits here
// are O(1); the differences seen are about 1e-6).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/model/generate.h"
#include "core/model/gpt.h"

namespace kervan::test {
namespace {

constexpr int64_t kMaxSeq = 16;
const GPTConfig kConfig{2, 4, 32, 50, kMaxSeq};

std::vector<int32_t> some_tokens(int64_t n) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((7 * i * i + 3 * i + 1) % kConfig.vocab_size);
  return t;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (int64_t v = 0; v < kConfig.vocab_size; ++v) d = std::max(d, std::abs(a[v] - b[v]));
  return d;
}

class KvCache : public ::testing::Test {
 protected:
  void SetUp() override {
    set_host_threads(2);
    model.init_weights(5);
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
  GPT model{kConfig, *be, /*max_batch=*/2, kMaxSeq};  // a training-sized model, as sample.every uses
};

TEST_F(KvCache, PrefillAndEveryStepGiveTheLogitsOfTheFullRecompute) {
  const std::vector<int32_t> tokens = some_tokens(kMaxSeq);
  const int64_t Vp = kConfig.padded_vocab();
  std::vector<float> cached(Vp), full(Vp);
  constexpr int64_t kPrompt = 5;
  model.cache_prefill(tokens.data(), kPrompt, cached.data());
  model.next_token_logits(tokens.data(), kPrompt, full.data());
  EXPECT_LE(max_abs_diff(cached, full), 1e-5f) << "prefill";
  for (int64_t t = kPrompt; t < kMaxSeq; ++t) {
    model.cache_decode(tokens[t], cached.data());
    EXPECT_EQ(model.cached_positions(), t + 1);
    model.next_token_logits(tokens.data(), t + 1, full.data());  // the cache survives a full forward
    EXPECT_LE(max_abs_diff(cached, full), 1e-5f) << "step at position " << t;
    float largest = 0;
    for (int64_t v = 0; v < kConfig.vocab_size; ++v) largest = std::max(largest, std::abs(full[v]));
    EXPECT_GT(largest, 0.05f) << "the comparison must see real logits";
  }
  EXPECT_THROW(model.cache_decode(tokens[0], cached.data()), std::exception) << "the cache is full";
  // A new prefill starts over: the same logits as the first.
  model.cache_prefill(tokens.data(), kPrompt, cached.data());
  model.next_token_logits(tokens.data(), kPrompt, full.data());
  EXPECT_LE(max_abs_diff(cached, full), 1e-5f);
  model.release_cache();
  EXPECT_EQ(model.cached_positions(), 0);
}

// 3 prompt tokens + 30 new ones in a window of 16: one prefill, 13 cached steps, then 16 steps that
// recompute the sliding window.
TEST_F(KvCache, GenerateGivesTheTokensOfTheUncachedPath) {
  const std::vector<int32_t> prompt = some_tokens(3);
  for (const float temperature : {0.0f, 1.0f}) {
    SampleOptions opt{30, temperature, 0, /*seed=*/11};
    opt.kv_cache = false;
    GenerateStats plain, cached;
    const std::vector<int32_t> want = generate(model, prompt, kMaxSeq, opt, &plain);
    opt.kv_cache = true;
    EXPECT_EQ(generate(model, prompt, kMaxSeq, opt, &cached), want) << "temperature " << temperature;
    EXPECT_EQ(plain.recomputed, 29);
    EXPECT_EQ(cached.prompt_tokens, 3);
    EXPECT_EQ(cached.decode_tokens, 29);
    EXPECT_EQ(cached.recomputed, 29 - (kMaxSeq - 3));  // 13 cached steps fill the window
    EXPECT_EQ(model.cached_positions(), 0) << "generate releases the cache";
  }
  // top-k and top-p draws, and a window shorter than the model's context.
  SampleOptions opt{20, 0.9f, 7, 3};
  opt.top_p = 0.8f;
  const std::vector<int32_t> with = generate(model, prompt, 10, opt);
  opt.kv_cache = false;
  EXPECT_EQ(generate(model, prompt, 10, opt), with);
}

TEST_F(KvCache, APromptLongerThanTheWindowRecomputesFromTheStart) {
  const std::vector<int32_t> prompt = some_tokens(20);
  SampleOptions opt{5, 0.0f, 0, 1};
  GenerateStats stats;
  const std::vector<int32_t> with = generate(model, prompt, kMaxSeq, opt, &stats);
  EXPECT_EQ(stats.prompt_tokens, kMaxSeq);
  EXPECT_EQ(stats.recomputed, 4);
  opt.kv_cache = false;
  EXPECT_EQ(generate(model, prompt, kMaxSeq, opt), with);
}

}  // namespace
}  // namespace kervan::test
