// The loader reading corpora through a coordinator (in-process, loopback): every batch equals the
// batch read from the corpus folders, byte for byte, for a blend with data-parallel ranks, over
// several epochs, with a cache small enough to evict; the validation split too; reading goes on
// across a coordinator restart; an unreachable coordinator and a cache too small are named errors.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <filesystem>
#include <map>
#include <thread>

#include "coordinator/coordinator_server.h"
#include "coordinator/remote_corpora.h"
#include "core/error.h"
#include "datasets/loader/data_loader.h"
#include "small_corpus.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 300, kSeq = 64, kBatch = 4;

class RemoteLoader : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    write_small_corpus(dir / "a", kVocab, {50000, 30001}, {1500}, 1);
    write_small_corpus(dir / "b", kVocab, {40000}, {}, 2);
  }

  std::unique_ptr<CoordinatorServer> start(const std::string& listen = "127.0.0.1:0") {
    CoordinatorOptions o;
    o.corpora = {CorpusSpec::parse(path("a")), CorpusSpec::parse(path("b"))};
    o.listen = listen;
    o.journal = path("journal");
    return std::make_unique<CoordinatorServer>(o, SharedSecret("secret"));
  }

  std::unique_ptr<RemoteCorpora> remote(const std::string& address, uint64_t cache_bytes,
                                        const std::string& name, double timeout_s = 10) {
    auto client = std::make_shared<CoordinatorClient>(ClientOptions{address, "default", timeout_s},
                                                      SharedSecret("secret"));
    // One-page segments, so that a small cache still evicts at a fine grain.
    return std::make_unique<RemoteCorpora>(
        client, TokenCache::Options{path("cache/" + name), cache_bytes, TokenCache::kBlocksPerPage});
  }

  // A blend of a and b (0.7 / 0.3), from the folders or from the coordinator.
  std::unique_ptr<DataLoader> blend(RemoteCorpora* r) {
    std::vector<DataLoader::Source> sources;
    for (const auto& [name, w] : {std::pair{"a", 0.7}, std::pair{"b", 0.3}})
      sources.push_back(
          {r ? r->open(name, "train", kVocab) : std::make_unique<TokenSource>(path(name), "train", kVocab),
           w});
    return std::make_unique<DataLoader>(std::move(sources), kSeq, 7);
  }

  struct Batch {
    std::vector<int32_t> x = std::vector<int32_t>(kBatch * kSeq), y = std::vector<int32_t>(kBatch * kSeq);
    bool operator==(const Batch&) const = default;
  };
  static Batch read(DataLoader& l, int64_t first) {
    Batch b;
    l.fill_batch(first, kBatch, b.x.data(), b.y.data());
    return b;
  }
};

TEST_F(RemoteLoader, BlendedDataParallelBatchesEqualTheFoldersAcrossEpochs) {
  auto server = start();
  const int dp = 2, accum = 2, steps = 400;  // 6400 samples: a's 1250 windows 3.6 times
  for (int rank = 0; rank < dp; ++rank) {
    // 64 KiB of cache for 240 KB of tokens: it must evict as it goes.
    auto r = remote(server->address(), 64 << 10, "rank" + std::to_string(rank));
    auto local = blend(nullptr), served = blend(r.get());
    served->set_read_ahead(3);
    for (int64_t step = 0; step < steps; ++step)
      for (int64_t m = 0; m < accum; ++m) {
        const int64_t first = first_sample_of(step * dp * accum * kBatch, m, dp, rank, kBatch);
        ASSERT_TRUE(read(*local, first) == read(*served, first))
            << "rank " << rank << " step " << step << " micro " << m;
      }
    const TokenCache::Stats s = r->cache().stats();
    EXPECT_GT(s.fetched_bytes, (80001 + 40000) * 2u);  // everything, and some of it again after eviction
    EXPECT_GT(s.evicted_bytes, 0u);
    EXPECT_LE(s.resident_bytes, 64u << 10);
    EXPECT_LT(s.segments, 40u);  // state kept for what is cached or pinned, not for all 59 pages
    EXPECT_LT(s.waits, s.require_calls);  // read-ahead had some batches ready
  }
}

TEST_F(RemoteLoader, CountsEveryWindowOfEveryEpochOnce) {
  auto server = start();
  auto r = remote(server->address(), 1 << 20, "coverage");
  std::vector<DataLoader::Source> one;
  one.push_back({r->open("a", "train", kVocab), 1.0});
  DataLoader served(std::move(one), kSeq, 3);
  served.set_read_ahead(2);
  // Each window's content identifies it (read from the folder).
  const TokenSource local(path("a"), "train", kVocab);
  const PackedSequences packed(local.spans(), kSeq);
  const int64_t W = packed.num_windows();
  std::map<uint64_t, int64_t> window_of;
  std::vector<int32_t> x(kSeq), y(kSeq);
  for (int64_t w = 0; w < W; ++w) {
    packed.read(w, x.data(), y.data());
    ASSERT_TRUE(window_of.emplace(XXH3_64bits(x.data(), x.size() * 4), w).second) << "two windows alike";
  }
  const int64_t epochs = 3;
  std::vector<std::vector<int>> seen(epochs, std::vector<int>(W));
  for (int64_t first = 0; first + kBatch <= epochs * W; first += kBatch) {
    const Batch b = read(served, first);
    for (int64_t i = 0; i < kBatch; ++i)
      seen[(first + i) / W][window_of.at(XXH3_64bits(b.x.data() + i * kSeq, kSeq * 4))]++;
  }
  const int64_t tail = (epochs * W) % kBatch;  // samples past the last whole batch were not read
  for (int64_t e = 0; e < epochs; ++e) {
    int64_t once = 0;
    for (int64_t w = 0; w < W; ++w) {
      ASSERT_LE(seen[e][w], 1) << "epoch " << e << " window " << w;
      once += seen[e][w];
    }
    EXPECT_EQ(once, e + 1 < epochs ? W : W - tail) << "epoch " << e;
  }
}

TEST_F(RemoteLoader, ValidationSplitEqualsTheFolders) {
  auto server = start();
  auto r = remote(server->address(), 1 << 20, "val");
  std::vector<DataLoader::Source> l, s;
  l.push_back({std::make_unique<TokenSource>(path("a"), "val", kVocab), 1.0});
  s.push_back({r->open("a", "val", kVocab), 1.0});
  DataLoader local(std::move(l), kSeq, 0, false), served(std::move(s), kSeq, 0, false);
  EXPECT_TRUE(served.source(0).has_split("train"));
  for (int64_t first = 0; first + kBatch <= local.num_windows(0); first += kBatch)
    ASSERT_TRUE(read(local, first) == read(served, first)) << first;
  try {
    r->open("b", "val", kVocab);
    ADD_FAILURE() << "b has no val split";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("corpus 'b': the corpus has no 'val' split"), std::string::npos)
        << e.what();
  }
}

TEST_F(RemoteLoader, KeepsReadingAcrossACoordinatorRestart) {
  auto server = start();
  const std::string address = server->address();
  auto r = remote(address, 1 << 20, "restart");
  auto local = blend(nullptr), served = blend(r.get());
  for (int64_t first = 0; first < 40; first += kBatch)
    ASSERT_TRUE(read(*local, first) == read(*served, first));
  server.reset();  // gone; back on the same port a little later
  std::thread back([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    server = start(address);
  });
  for (int64_t first = 40; first < 400; first += kBatch)
    ASSERT_TRUE(read(*local, first) == read(*served, first)) << first;
  back.join();
}

TEST_F(RemoteLoader, NamesAnUnreachableCoordinatorAndATooSmallCache) {
  try {
    remote("127.0.0.1:1", 1 << 20, "nobody", 0.5);
    ADD_FAILURE() << "no coordinator, no error";
  } catch (const EnvironmentError& e) {  // exit code 4: not the input's fault, maybe the network's
    EXPECT_NE(
        std::string(e.what()).find("GetManifest on the coordinator at 127.0.0.1:1: no answer for 0.5 s"),
        std::string::npos)
        << e.what();
  }
  auto server = start();
  auto r = remote(server->address(), 1000, "tiny");  // less than one page
  auto served = blend(r.get());
  try {
    read(*served, 0);
    ADD_FAILURE() << "a 1,000-byte cache held a batch";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot hold one batch's data"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kervan
