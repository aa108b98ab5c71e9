// The BERT and T5 objectives of the loader: exact statistics over many samples, no leakage (every
// example reconstructs its window; no special token where it does not belong), and determinism
// across data-parallel splits, resumes and thread counts (examples depend on (seed, sample) only).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/rng.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/loader/masked_lm.h"
#include "datasets/loader/span_corruption.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

constexpr int64_t kVocab = 1000;  // the "tokenizer's" ids; the specials follow

class Objectives : public TempDirTest {
 protected:
  // A loader over an llm.c file of random tokens in [0, kVocab), windows of seq_len + 1.
  std::unique_ptr<DataLoader> loader(int64_t seq_len, int64_t tokens = 400'000) {
    if (corpus.empty()) {
      std::vector<uint16_t> t(tokens);
      for (int64_t i = 0; i < tokens; ++i) t[i] = static_cast<uint16_t>(splitmix64(i) % kVocab);
      corpus = path("tokens.bin");
      write_llmc_token_file(corpus, t);
    }
    std::vector<DataLoader::Source> s;
    s.push_back({std::make_unique<TokenSource>(corpus, "train", 65536), 1.0});
    return std::make_unique<DataLoader>(std::move(s), seq_len, 7);
  }
  std::string corpus;
};

const SpecialTokens kBert = SpecialTokens::make("bert", kVocab, kVocab - 1, kVocab + 4);
const SpecialTokens kT5 = SpecialTokens::make("t5", kVocab, kVocab - 1, kVocab + 101);

TEST(SpecialTokens, FollowTheTokenizersVocabulary) {
  EXPECT_EQ(kBert.pad(), 1000);
  EXPECT_EQ(kBert.cls(), 1001);
  EXPECT_EQ(kBert.sep(), 1002);
  EXPECT_EQ(kBert.mask(), 1003);
  EXPECT_EQ(kBert.name(1003), "[MASK]");
  EXPECT_EQ(kT5.pad(), 1000);
  EXPECT_EQ(kT5.sentinel(0), 1001);
  EXPECT_EQ(kT5.sentinel(99), 1100);
  EXPECT_EQ(kT5.name(1008), "<extra_id_7>");
  EXPECT_EQ(kT5.name(999), "");
  EXPECT_EQ(SpecialTokens::make("gpt", 50257, 50256, 50257).count(), 0);
  try {
    SpecialTokens::make("bert", 50257, 50256, 50258);
    FAIL() << "a vocabulary without room was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.vocab_size (50258) has no room for BERT's 4 special tokens"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(SpecialTokens::make("t5", 1000, 999, 1100), UserError);  // needs 1101
}

// T = 130: 128 content tokens, round(0.15 * 128) = 19 predicted per sequence. Over 3000 sequences
// (57,000 predictions) the binomial standard deviation of the 80% share is 0.0017 and of the 10%
// shares 0.0013; the tolerance 0.008 is about 5 of them.
TEST_F(Objectives, MaskedLmCountsAndReplacementShares) {
  const int64_t T = 130, N = 3000;
  auto windows = loader(MaskedLm::loader_seq_len(T));
  MaskedLm mlm(*windows, T, kBert, {});
  EXPECT_EQ(mlm.predicted_per_sequence(), 19);
  ExampleBatch ex;
  mlm.fill_batch(0, N, ex);
  std::vector<int32_t> window(T - 2);
  int64_t masked = 0, random = 0, kept = 0;
  std::vector<int64_t> per_position(T, 0);
  for (int64_t b = 0; b < N; ++b) {
    windows->read_window(b, window.data());
    const int32_t* tok = &ex.tokens[b * T];
    const int32_t* tgt = &ex.targets[b * T];
    ASSERT_EQ(tok[0], kBert.cls());
    ASSERT_EQ(tok[T - 1], kBert.sep());
    ASSERT_EQ(tgt[0], -1);
    ASSERT_EQ(tgt[T - 1], -1);
    int64_t predicted = 0;
    for (int64_t t = 1; t < T - 1; ++t) {
      const int32_t original = window[t - 1];
      if (tgt[t] < 0) {  // not predicted: shown as it is
        ASSERT_EQ(tok[t], original);
        continue;
      }
      ++predicted;
      ++per_position[t];
      ASSERT_EQ(tgt[t], original) << "a target is the original token";
      if (tok[t] == kBert.mask()) {
        ++masked;
      } else {
        ASSERT_LT(tok[t], kVocab) << "a random replacement is an ordinary token";
        ++(tok[t] == original ? kept : random);
      }
    }
    ASSERT_EQ(predicted, 19);
  }
  const double total = static_cast<double>(masked + random + kept);
  EXPECT_NEAR(masked / total, 0.8, 0.008);
  // A random token equals the original 1 time in kVocab: it counts as kept.
  EXPECT_NEAR(random / total, 0.1 * (1 - 1.0 / kVocab), 0.008);
  EXPECT_NEAR(kept / total, 0.1 + 0.1 / kVocab, 0.008);
  // Every content position is equally likely: 3000 * 19/128 = 445 expected, std 19.
  for (int64_t t = 1; t < T - 1; ++t) EXPECT_NEAR(per_position[t], N * 19.0 / 128, 100) << "position " << t;
}

// Words: a token continues the previous one's word when its id is not a multiple of 3 (so words
// have 1-3 pieces, ids 0, 3, 6, ... begin them). A word is predicted whole or not at all.
TEST_F(Objectives, MaskedLmWholeWord) {
  const int64_t T = 66, N = 500;
  std::vector<uint8_t> flags(kVocab);
  for (int64_t id = 0; id < kVocab; ++id) flags[id] = kEndsInWord | (id % 3 ? kStartsInWord : 0);
  auto windows = loader(MaskedLm::loader_seq_len(T));
  MaskedLm mlm(*windows, T, kBert, {.whole_word = true}, flags);
  ExampleBatch ex;
  mlm.fill_batch(0, N, ex);
  int64_t total = 0;
  for (int64_t b = 0; b < N; ++b) {
    const int32_t* tgt = &ex.targets[b * T];
    std::vector<int32_t> window(T - 2);
    windows->read_window(b, window.data());
    int64_t predicted = 0;
    for (int64_t i = 0; i < T - 2; ++i) {
      predicted += tgt[1 + i] >= 0;
      if (i > 0 && window[i] % 3 != 0) {  // same word as piece i - 1
        ASSERT_EQ(tgt[1 + i] >= 0, tgt[i] >= 0) << "sample " << b << ": word split at " << i;
      }
    }
    ASSERT_LE(predicted, mlm.predicted_per_sequence());
    total += predicted;
  }
  // Words that would overshoot are skipped, so a few sequences predict slightly fewer.
  EXPECT_GT(total, N * (mlm.predicted_per_sequence() - 1));
  EXPECT_THROW(MaskedLm(*windows, T, kBert, {.whole_word = true}), std::logic_error);  // flags needed
}

TEST_F(Objectives, MaskedLmIsAPureFunctionOfSeedAndSample) {
  const int64_t T = 34;
  auto w1 = loader(MaskedLm::loader_seq_len(T)), w2 = loader(MaskedLm::loader_seq_len(T));
  MaskedLm one(*w1, T, kBert, {.seed = 3}), other(*w2, T, kBert, {.seed = 3});
  ExampleBatch all, a, b;
  set_host_threads(1);
  one.fill_batch(100, 8, all);  // one rank reading 8 samples
  set_host_threads(2);
  other.fill_batch(104, 4, b);  // DP=2: rank 1's half first, on a freshly built (resumed) loader
  other.fill_batch(100, 4, a);
  EXPECT_TRUE(std::equal(a.tokens.begin(), a.tokens.end(), all.tokens.begin()));
  EXPECT_TRUE(std::equal(b.tokens.begin(), b.tokens.end(), all.tokens.begin() + 4 * T));
  EXPECT_TRUE(std::equal(b.targets.begin(), b.targets.end(), all.targets.begin() + 4 * T));
  MaskedLm reseeded(*w2, T, kBert, {.seed = 4});
  reseeded.fill_batch(100, 8, a);
  EXPECT_NE(a.targets, all.targets) << "another seed masks other positions";
}

TEST(SpanCorruptionLengths, AreThePublishedOnes) {
  EXPECT_EQ(SpanCorruption::lengths(512, 0.15, 3.0).raw, 568);
  EXPECT_EQ(SpanCorruption::lengths(512, 0.15, 3.0).targets, 114);
  EXPECT_EQ(SpanCorruption::lengths(128, 0.15, 3.0).raw, 141);
  EXPECT_EQ(SpanCorruption::lengths(128, 0.15, 3.0).targets, 29);
}

// T = 128: windows of 141 tokens, round(0.15 * 141) = 21 noise tokens in round(21 / 3) = 7 spans.
TEST_F(Objectives, SpanCorruptionStatisticsAndReconstruction) {
  const int64_t T = 128, N = 2000;
  auto windows = loader(SpanCorruption::loader_seq_len(T, {}));
  SpanCorruption sc(*windows, T, kT5, {});
  ASSERT_EQ(sc.targets_length(), 29);
  const int64_t L = 141, Td = 29;
  ExampleBatch ex;
  sc.fill_batch(0, N, ex);
  ASSERT_EQ(ex.T, T);
  ASSERT_EQ(ex.T_dec, Td);
  std::map<int64_t, int64_t> span_lengths;
  std::vector<int64_t> noise_at(L, 0);
  std::vector<int32_t> window(L);
  for (int64_t b = 0; b < N; ++b) {
    windows->read_window(b, window.data());
    const std::vector<uint8_t> mask = sc.noise_mask(b);
    int64_t noise = 0, spans = 0, run = 0;
    for (int64_t i = 0; i < L; ++i) {
      noise += mask[i];
      noise_at[i] += mask[i];
      if (mask[i]) ++run;
      if (mask[i] && (i == 0 || !mask[i - 1])) ++spans;
      if (run && (i == L - 1 || !mask[i + 1])) ++span_lengths[std::exchange(run, 0)];
    }
    ASSERT_EQ(noise, 21);
    ASSERT_EQ(spans, 7);
    ASSERT_EQ(mask[0], 0) << "non-noise comes first";
    ASSERT_EQ(mask[L - 1], 1) << "and noise last";
    // No leakage: the input with each sentinel replaced by its span is the window, and the
    // targets hold exactly the spans; sentinels appear in order; only the expected specials.
    const int32_t* in = &ex.tokens[b * T];
    const int32_t* dec = &ex.decoder_tokens[b * Td];
    const int32_t* tgt = &ex.targets[b * Td];
    ASSERT_EQ(in[T - 1], kT5.eot);
    ASSERT_EQ(tgt[Td - 1], kT5.eot);
    std::map<int32_t, std::vector<int32_t>> span_of;
    int32_t current = -1;
    int expected_sentinel = 0;
    for (int64_t t = 0; t < Td - 1; ++t) {
      if (kT5.is_special(tgt[t])) {
        ASSERT_EQ(tgt[t], kT5.sentinel(expected_sentinel++));
        current = tgt[t];
      } else {
        ASSERT_GE(current, 0) << "targets start with a sentinel";
        span_of[current].push_back(tgt[t]);
      }
    }
    ASSERT_EQ(expected_sentinel, 7);
    std::vector<int32_t> rebuilt;
    for (int64_t t = 0; t < T - 1; ++t) {
      if (!kT5.is_special(in[t])) {
        rebuilt.push_back(in[t]);
        continue;
      }
      ASSERT_TRUE(span_of.count(in[t])) << "input sentinel " << in[t] << " has no target span";
      rebuilt.insert(rebuilt.end(), span_of[in[t]].begin(), span_of[in[t]].end());
    }
    ASSERT_EQ(rebuilt, window) << "sample " << b;
    ASSERT_EQ(dec[0], kT5.pad());
    for (int64_t t = 1; t < Td; ++t) ASSERT_EQ(dec[t], tgt[t - 1]);
  }
  // Spans of 21 tokens in 7: mean exactly 3; lengths from 1 up, varied.
  int64_t count = 0, sum = 0;
  for (const auto& [len, n] : span_lengths) count += n, sum += len * n;
  EXPECT_EQ(count, 7 * N);
  EXPECT_DOUBLE_EQ(static_cast<double>(sum) / count, 3.0);
  EXPECT_GT(span_lengths[1], N);               // a random cut of 21 into 7 gives many 1s ...
  EXPECT_GT(span_lengths.rbegin()->first, 6);  // ... and some long spans
  // The recipe starts with kept tokens and ends with noise, so the first and last few positions
  // are rarer and more often noise; in between every position is noise about as often, 2000 *
  // 21/141 = 298 (binomial std 16).
  for (int64_t i = 5; i < L - 6; ++i) EXPECT_NEAR(noise_at[i], N * 21.0 / 141, 80) << "position " << i;
}

TEST_F(Objectives, SpanCorruptionIsAPureFunctionOfSeedAndSample) {
  const int64_t T = 64;
  auto w1 = loader(SpanCorruption::loader_seq_len(T, {})), w2 = loader(SpanCorruption::loader_seq_len(T, {}));
  SpanCorruption one(*w1, T, kT5, {}), other(*w2, T, kT5, {});
  ExampleBatch all, half;
  set_host_threads(1);
  one.fill_batch(20, 6, all);
  set_host_threads(2);
  other.fill_batch(23, 3, half);  // DP=2, rank 1, on a freshly built (resumed) loader
  const int64_t Td = one.targets_length();
  EXPECT_TRUE(std::equal(half.tokens.begin(), half.tokens.end(), all.tokens.begin() + 3 * T));
  EXPECT_TRUE(std::equal(half.targets.begin(), half.targets.end(), all.targets.begin() + 3 * Td));
  EXPECT_TRUE(std::equal(half.decoder_tokens.begin(), half.decoder_tokens.end(),
                         all.decoder_tokens.begin() + 3 * Td));
}

TEST_F(Objectives, SpanCorruptionRefusesMoreSpansThanSentinels) {
  // T = 2048: windows of 2275 tokens, 341 noise tokens in 114 spans; T5 has 100 sentinels.
  auto windows = loader(SpanCorruption::loader_seq_len(2048, {}));
  try {
    SpanCorruption sc(*windows, 2048, kT5, {});
    FAIL() << "accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("more than T5's 100 sentinels"), std::string::npos) << e.what();
  }
}

TEST(WordPieceFlags, FromTokenBytes) {
  EXPECT_EQ(word_piece_flags(" the"), kEndsInWord);  // a space starts a new word
  EXPECT_EQ(word_piece_flags("ing"), kStartsInWord | kEndsInWord);
  EXPECT_EQ(word_piece_flags("."), 0);
  EXPECT_EQ(word_piece_flags("\xc3\xa9t"), kStartsInWord | kEndsInWord);  // UTF-8 letters are word characters
}

}  // namespace
}  // namespace kervan
