// The loader: packing, the shuffled order (a permutation per epoch, pure in its inputs, resumable at
// any consumed_samples), data-parallel disjointness, weighted blending, and corpora as sources.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <filesystem>
#include <numeric>
#include <set>

#include "core/error.h"
#include "datasets/format/corpus_manifest.h"
#include "datasets/loader/data_loader.h"
#include "datasets/loader/index_permutation.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/format/token_shard.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

TEST(IndexPermutation, IsABijectionForAnySize) {
  for (const uint64_t n : {1u, 2u, 3u, 5u, 17u, 100u, 1000u, 4097u, 65536u}) {
    const IndexPermutation p(n, 42);
    std::vector<bool> hit(n);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t v = p(i);
      ASSERT_LT(v, n);
      ASSERT_FALSE(hit[v]) << "n=" << n << ": " << v << " twice";
      hit[v] = true;
    }
  }
}

TEST(IndexPermutation, KeysGiveDifferentWellMixedOrders) {
  const uint64_t n = 1000;
  const IndexPermutation a(n, 1), b(n, 2);
  int same = 0, fixed = 0;
  double displacement = 0;
  for (uint64_t i = 0; i < n; ++i) {
    same += a(i) == b(i);
    fixed += a(i) == i;
    displacement += std::abs(static_cast<double>(a(i)) - static_cast<double>(i));
  }
  // A uniform random permutation has ~1 fixed point, ~1 agreement with another, and a mean
  // displacement of n/3; allow wide margins, the point is "shuffled, not shifted".
  EXPECT_LT(same, 10);
  EXPECT_LT(fixed, 10);
  EXPECT_NEAR(displacement / n, n / 3.0, n / 15.0);
}

// Tokens 0, 1, 2, ... split into spans of the given sizes, alternating uint16 and uint32.
struct Stream {
  std::vector<std::vector<uint16_t>> narrow;
  std::vector<std::vector<uint32_t>> wide;
  std::vector<TokenSpan> spans;
  explicit Stream(const std::vector<uint64_t>& sizes) {
    uint32_t next = 0;
    narrow.reserve(sizes.size());
    wide.reserve(sizes.size());
    for (size_t s = 0; s < sizes.size(); ++s) {
      if (s % 2 == 0) {
        auto& v = narrow.emplace_back();
        for (uint64_t i = 0; i < sizes[s]; ++i) v.push_back(static_cast<uint16_t>(next++));
        spans.push_back({v.data(), 2, v.size()});
      } else {
        auto& v = wide.emplace_back();
        for (uint64_t i = 0; i < sizes[s]; ++i) v.push_back(next++);
        spans.push_back({v.data(), 4, v.size()});
      }
    }
  }
};

TEST(PackedSequences, WindowsTileTheStreamAcrossSpans) {
  const Stream s({5, 0, 3, 12, 1});  // 21 tokens, an empty span, windows crossing every boundary
  const PackedSequences p(s.spans, 4);
  ASSERT_EQ(p.num_windows(), 5);  // (21 - 1) / 4
  std::vector<int32_t> x(4), y(4);
  for (int64_t w = 0; w < p.num_windows(); ++w) {
    p.read(w, x.data(), y.data());
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(x[t], w * 4 + t) << "window " << w;
      EXPECT_EQ(y[t], w * 4 + t + 1) << "window " << w;
    }
  }
  EXPECT_EQ(PackedSequences(Stream({4}).spans, 4).num_windows(), 0);
}

// A loader over llm.c files of the given token counts (token i of file f is (f * 1000 + i) % 60000).
class Loader : public TempDirTest {
 protected:
  std::string llmc(int f, int64_t n) {
    std::vector<uint16_t> tokens(n);
    for (int64_t i = 0; i < n; ++i) tokens[i] = static_cast<uint16_t>((f * 1000 + i) % 60000);
    const std::string p = (dir / ("f" + std::to_string(f) + ".bin")).string();
    write_llmc_token_file(p, tokens);
    return p;
  }
  DataLoader make(const std::vector<std::pair<std::string, double>>& sources, int64_t seq_len, uint64_t seed) {
    std::vector<DataLoader::Source> v;
    for (const auto& [path, weight] : sources) v.push_back({std::make_unique<TokenSource>(path, "train", 65536), weight});
    return DataLoader(std::move(v), seq_len, seed);
  }
};

TEST_F(Loader, EachEpochVisitsEveryWindowOnceInAFreshOrder) {
  const std::string f = llmc(0, 1001);
  DataLoader a = make({{f, 1}}, 10, 7), other_seed = make({{f, 1}}, 10, 8);
  ASSERT_EQ(a.num_windows(0), 100);
  std::vector<int64_t> epoch0, epoch1;
  for (int64_t k = 0; k < 200; ++k) {
    const SampleRef r = a.locate(k);
    EXPECT_EQ(r.epoch, k / 100);
    (k < 100 ? epoch0 : epoch1).push_back(r.window);
  }
  EXPECT_EQ(std::set<int64_t>(epoch0.begin(), epoch0.end()).size(), 100u) << "a window repeated within epoch 0";
  EXPECT_EQ(std::set<int64_t>(epoch1.begin(), epoch1.end()).size(), 100u) << "a window repeated within epoch 1";
  EXPECT_NE(epoch0, epoch1);
  int same = 0;
  for (int64_t k = 0; k < 100; ++k) same += other_seed.locate(k).window == epoch0[k];
  EXPECT_LT(same, 10) << "the seed does not change the order";
}

TEST_F(Loader, ResumingAtAnyConsumedSampleCountContinuesExactly) {
  const std::string f0 = llmc(0, 5000), f1 = llmc(1, 3000);
  const int64_t T = 16, G = 12;  // global batch of 12 samples
  DataLoader full = make({{f0, 0.7}, {f1, 0.3}}, T, 3);
  std::vector<int32_t> x(G * T), y(G * T), x2(G * T), y2(G * T);
  std::vector<std::vector<int32_t>> steps;
  for (int64_t step = 0; step < 60; ++step) {  // past one epoch of f1 (187 windows)
    full.fill_batch(step * G, G, x.data(), y.data());
    steps.push_back(x);
  }
  for (const int64_t resume_step : {1, 17, 41}) {
    DataLoader resumed = make({{f0, 0.7}, {f1, 0.3}}, T, 3);  // a new process, told consumed_samples
    for (int64_t step = resume_step; step < 60; ++step) {
      resumed.fill_batch(step * G, G, x2.data(), y2.data());
      ASSERT_EQ(x2, steps[step]) << "resumed at step " << resume_step << ", step " << step;
    }
  }
}

TEST_F(Loader, DataParallelRanksSplitEachGlobalBatchDisjointly) {
  const std::string f = llmc(0, 20000);
  const int64_t T = 8, G = 24;
  for (const int64_t dp : {1, 2, 3, 4}) {
    for (const int64_t accum : {1, 2}) {
      if (G % (dp * accum)) continue;
      const int64_t B = G / (dp * accum);
      for (int64_t consumed = 0; consumed < 3 * G; consumed += G) {
        std::vector<int> covered(G);
        for (int64_t r = 0; r < dp; ++r)
          for (int64_t m = 0; m < accum; ++m)
            for (int64_t b = 0; b < B; ++b) ++covered.at(first_sample_of(consumed, m, dp, r, B) + b - consumed);
        EXPECT_EQ(covered, std::vector<int>(G, 1)) << "dp " << dp << " accum " << accum;
      }
    }
  }
  // And the tokens a rank reads are the ones a single process reads at those sample indices.
  DataLoader one = make({{f, 1}}, T, 5), rank1 = make({{f, 1}}, T, 5);
  std::vector<int32_t> all(G * T), ally(G * T), part(G / 2 * T), party(G / 2 * T);
  one.fill_batch(G, G, all.data(), ally.data());
  rank1.fill_batch(first_sample_of(G, 0, 2, 1, G / 2), G / 2, part.data(), party.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), all.begin() + G / 2 * T));
}

TEST_F(Loader, BlendFollowsTheWeightsAtEveryPrefix) {
  const std::string a = llmc(0, 4000), b = llmc(1, 4000), c = llmc(2, 4000);
  DataLoader mix = make({{a, 5}, {b, 3}, {c, 2}}, 10, 1);  // 50%, 30%, 20%
  EXPECT_DOUBLE_EQ(mix.weight(0), 0.5);
  std::vector<int64_t> count(3);
  std::vector<std::set<int64_t>> windows(3);
  for (int64_t k = 0; k < 1000; ++k) {
    const SampleRef r = mix.locate(k);
    ++count[r.source];
    if (r.epoch == 0) {
      EXPECT_TRUE(windows[r.source].insert(r.window).second) << "repeat in source " << r.source;
    }
    for (int d = 0; d < 3; ++d) ASSERT_LE(std::abs(count[d] - mix.weight(d) * (k + 1)), 1.0) << "k " << k;
  }
  EXPECT_EQ(count, (std::vector<int64_t>{500, 300, 200}));
  // A fresh loader asked in any order gives the refs recorded above (backwards: replays the blend).
  std::vector<SampleRef> refs;
  DataLoader forward = make({{a, 5}, {b, 3}, {c, 2}}, 10, 1), again = make({{a, 5}, {b, 3}, {c, 2}}, 10, 1);
  for (int64_t k = 0; k < 1000; ++k) refs.push_back(forward.locate(k));
  for (int64_t k = 999; k >= 0; k -= 37) EXPECT_EQ(again.locate(k), refs[k]) << k;
}

TEST_F(Loader, BlendOrderIsPinned) {
  // The blend is exact integer arithmetic, so these picks are the same on every machine and build
  // (a floating-point rule changed with fused multiply-add). Values from the rule in Python.
  const std::string a = llmc(0, 4000), b = llmc(1, 4000), c = llmc(2, 4000);
  DataLoader two = make({{a, 0.7}, {b, 0.3}}, 10, 1);
  std::string picks;
  for (int64_t k = 0; k < 40; ++k) picks += static_cast<char>('0' + two.locate(k).source);
  EXPECT_EQ(picks, "0100010010010001001001000100100100010010");
  DataLoader three = make({{a, 0.1}, {b, 0.2}, {c, 0.7}}, 10, 1);
  int64_t weighted = 0;
  for (int64_t k = 0; k < 1000; ++k) weighted += k * three.locate(k).source;
  EXPECT_EQ(weighted, 799000);
}

TEST_F(Loader, TooShortAndBadWeightsAreNamed) {
  const std::string f = llmc(0, 8);
  try {
    make({{f, 1}}, 8, 1);
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(f + ": its 8 tokens are fewer than one training sequence"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make({{llmc(1, 100), 0}}, 8, 1), UserError);
  EXPECT_THROW(make({{llmc(2, 100), std::numeric_limits<double>::infinity()}}, 8, 1), UserError);
  EXPECT_THROW(TokenSource(f, "val", 65536), UserError);  // llm.c files have no splits
}

TEST_F(Loader, ReadsACorpusSplitAsItsShardsInManifestOrder) {
  // Two train shards (documents of tokens d*10 .. d*10+4, then eot 99) and one val shard.
  CorpusManifest m;
  m.tokenizer = {"test", 100, 99, ""};
  std::vector<int32_t> stream;
  for (int s = 0; s < 3; ++s) {
    const std::string split = s < 2 ? "train" : "val", file = split + std::to_string(s) + ".kvs";
    TokenShardWriter w((dir / file).string(), 100);
    for (int d = 0; d < 4; ++d) {
      std::vector<uint32_t> doc;
      for (int i = 0; i < 5; ++i) doc.push_back(static_cast<uint32_t>(s * 40 + d * 10 + i) % 99);
      doc.push_back(99);
      w.add_document(doc);
      if (s < 2) stream.insert(stream.end(), doc.begin(), doc.end());
    }
    const ShardHeader h = w.finish();
    m.splits[split].push_back({file, h.token_count, h.document_count, fs::file_size(dir / file), h.checksum});
  }
  write_corpus_manifest(dir.string(), m);

  TokenSource train(dir.string(), "train", 128);
  EXPECT_TRUE(train.is_corpus());
  EXPECT_TRUE(train.has_split("val"));
  EXPECT_EQ(train.num_tokens(), 48u);
  const PackedSequences p(train.spans(), 6);
  std::vector<int32_t> x(6), y(6);
  for (int64_t w = 0; w < p.num_windows(); ++w) {
    p.read(w, x.data(), y.data());
    EXPECT_TRUE(std::equal(x.begin(), x.end(), stream.begin() + w * 6)) << w;
  }
  EXPECT_EQ(TokenSource(dir.string(), "val", 128).num_tokens(), 24u);
  try {
    TokenSource(dir.string(), "train", 64);  // the model's vocabulary is smaller than the corpus's
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("more than model.vocab_size = 64"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kervan
