// Tensor parallelism (and data x tensor parallelism) against the single-process run.
//
// A tiny GPT (4 heads, vocabulary 50 padded to 128) is trained for 5 AdamW steps with global-norm
// clipping (always active, so the gradient norm over the shards is checked too), once split over
// a tensor-parallel group and once in one process on the same global batch. Each step's loss must
// agree, and so must every parameter, gathered from the shards into its global tensor, to
// relative L2 1e-4 per tensor (only fp32 summation order differs: partial sums all-reduced across
// ranks). As in test_data_parallel.cpp the key bias of c_attn is held to Adam's bound of lr per
// step instead: its true gradient is 0 and Adam turns rounding noise into steps of +-lr. Under
// TP=4 two ranks own only padding rows of the vocabulary, which exercises the "no real token in
// this shard" paths of the embedding and the cross-entropy. DP=2 x TP=2 runs with the bucketed
// all-reduce and with ZeRO-1.
#include <gtest/gtest.h>
#include <mpi.h>

#include "../common/compare.h"
#include "core/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "parallel/mpi_communicator.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {
namespace {

constexpr int64_t kT = 16;
constexpr float kLr = 1e-2f;
constexpr float kClip = 0.1f;  // below the gradient norms of every step: clipping is active
constexpr int kSteps = 5;
const GPTConfig kConfig{2, 4, 16, 50, kT};

void sample_tokens(int64_t k, int32_t* x, int32_t* y) {
  const uint64_t key = stream_key(7, "tp-test");
  for (int64_t t = 0; t <= kT; ++t) {
    const auto tok =
        static_cast<int32_t>(splitmix64(key ^ splitmix64(k * (kT + 1) + t)) % kConfig.vocab_size);
    if (t < kT) x[t] = tok;
    if (t > 0) y[t - 1] = tok;
  }
}

struct Result {
  std::vector<float> losses;               // per step, mean over the global batch
  std::vector<float> norms;                // per step, global gradient norm
  std::vector<std::vector<float>> params;  // global tensors, declaration order
  std::vector<std::string> names;
  std::vector<float> replicated;  // this rank's replicated parameters, concatenated
};

// kSteps steps of B samples per DP rank: DP rank r reads samples [step*B*dp + r*B, +B).
// With `zero`, ZeRO-1 (AdamW state sharded over dp) replaces the bucketed all-reduce. Every
// layout goes through TrainStep, the recipe kervan train uses.
Result train(Backend& be, Communicator* tp, Communicator* dp, int64_t B, bool zero = false) {
  std::unique_ptr<CommunicatorTpGroup> group;
  if (tp) group = std::make_unique<CommunicatorTpGroup>(*tp);
  GPT model(kConfig, be, B, kT, group.get());
  model.init_weights(11);
  TrainStep train_step(model, {0.9f, 0.95f, 1e-8f, 0.1f}, {dp, tp, zero, /*bucket_bytes=*/4096});
  const int64_t n = dp ? dp->size() : 1, r = dp ? dp->rank() : 0;
  std::vector<int32_t> x(B * kT), y(B * kT);
  Result res;
  for (int step = 0; step < kSteps; ++step) {
    model.params().zero_grad(be);
    for (int64_t b = 0; b < B; ++b) sample_tokens(step * B * n + r * B + b, &x[b * kT], &y[b * kT]);
    float loss = model.forward(x.data(), y.data(), B, kT);
    train_step.before_last_backward();
    model.backward(1.0f);
    const float norm = train_step.reduce_gradients();
    EXPECT_GT(norm, kClip);
    res.norms.push_back(norm);
    train_step.step(kLr, clip_factor(norm, kClip));
    if (dp) {
      Tensor t = be.empty({1}, DType::F32);
      be.copy_from_host(t, &loss);
      dp->all_reduce(t, ReduceOp::Avg);
      be.copy_to_host(&loss, t);
    }
    res.losses.push_back(loss);
  }
  SoloCommunicator solo;
  for (Parameter& p : model.params().all()) {
    res.names.push_back(p.name);
    res.params.push_back(gather_global(be, p, tp ? *tp : static_cast<Communicator&>(solo)));
    if (!p.sharding.sharded())
      res.replicated.insert(res.replicated.end(), res.params.back().begin(), res.params.back().end());
  }
  return res;
}

void expect_same_model(const Result& got, const Result& want) {
  ASSERT_EQ(got.names, want.names);
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got.losses[s], want.losses[s], 1e-5f * want.losses[s]) << "step " << s;
    EXPECT_NEAR(got.norms[s], want.norms[s], 1e-5f * want.norms[s]) << "step " << s;
  }
  for (size_t i = 0; i < got.names.size(); ++i) {
    std::vector<float> g = got.params[i];
    const std::vector<float>& w = want.params[i];
    ASSERT_EQ(g.size(), w.size()) << got.names[i];
    if (got.names[i].ends_with(".attn.c_attn.bias")) {
      for (int64_t j = kConfig.d_model; j < 2 * kConfig.d_model; ++j) {
        EXPECT_LE(std::abs(g[j] - w[j]), kSteps * kLr * 1.01f) << got.names[i];
        g[j] = w[j];
      }
    }
    EXPECT_LT(test::rel_l2(g.data(), w.data(), static_cast<int64_t>(g.size())), 1e-4) << got.names[i];
  }
}

// The replicated parameters must be bit-identical on every rank of `comm`.
void expect_replicas_identical(const Result& r, MPI_Comm comm) {
  std::vector<float> root = r.replicated;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, comm);
  EXPECT_TRUE(root == r.replicated) << "replicated parameters drifted across tensor-parallel ranks";
}

class TensorParallel : public ::testing::Test {
 protected:
  int world_rank() const {
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
  }
  int world_size() const {
    int n;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
  }
  // A communicator of the world ranks with the same color, and its raw MPI handle.
  std::unique_ptr<MpiCommunicator> split(int color, const std::string& name, MPI_Comm* raw = nullptr) {
    MPI_Comm c, c2;
    MPI_Comm_split(MPI_COMM_WORLD, color, world_rank(), &c);
    if (raw) {
      MPI_Comm_dup(c, &c2);
      *raw = c2;
    }
    return std::make_unique<MpiCommunicator>(c, name, 60.0);
  }
  void run_tp(int tp) {
    if (world_size() % tp != 0) GTEST_SKIP() << "world size does not divide by " << tp;
    MPI_Comm raw;
    auto group = split(world_rank() / tp, "tensor-parallel", &raw);
    ASSERT_EQ(group->size(), tp);
    const auto parallel = train(*be, group.get(), nullptr, 2);
    const auto single = train(*be, nullptr, nullptr, 2);
    expect_same_model(parallel, single);
    expect_replicas_identical(parallel, raw);
    MPI_Comm_free(&raw);
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(TensorParallel, Tp2EqualsOneProcess) {
  run_tp(2);
}

TEST_F(TensorParallel, Tp4EqualsOneProcess) {
  run_tp(4);
}

class DataTimesTensorParallel : public TensorParallel, public ::testing::WithParamInterface<bool> {};

TEST_P(DataTimesTensorParallel, Dp2xTp2EqualsOneProcessWithTheSameGlobalBatch) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  const int rank = world_rank();
  MPI_Comm raw;
  auto tp = split(rank / 2, "tensor-parallel", &raw);  // ProcessGrid: TP innermost
  auto dp = split(rank % 2, "data-parallel");
  const auto parallel = train(*be, tp.get(), dp.get(), 2, /*zero=*/GetParam());
  const auto single = train(*be, nullptr, nullptr, 4);
  expect_same_model(parallel, single);
  expect_replicas_identical(parallel, raw);
  MPI_Comm_free(&raw);
}

INSTANTIATE_TEST_SUITE_P(Optimizer, DataTimesTensorParallel, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Zero1" : "AllReduce"; });

// Inference: the full-vocabulary logits row gathered from the shards equals the single-process
// row, and sampling (every TP rank takes part) returns the same tokens.
TEST_F(TensorParallel, GatheredLogitsAndSamplingEqualOneProcess) {
  if (world_size() % 2 != 0) GTEST_SKIP() << "world size is odd";
  auto group = split(world_rank() / 2, "tensor-parallel");
  CommunicatorTpGroup tp(*group);
  GPT sharded(kConfig, *be, 1, kT, &tp), single(kConfig, *be, 1, kT);
  sharded.init_weights(3);
  single.init_weights(3);
  std::vector<int32_t> x(kT), y(kT);
  sample_tokens(0, x.data(), y.data());
  sharded.forward(x.data(), nullptr, 1, kT);
  single.forward(x.data(), nullptr, 1, kT);
  const int64_t Vp = kConfig.padded_vocab();
  std::vector<float> got(Vp), want(Vp);
  sharded.logits_row(kT - 1, got.data());
  single.logits_row(kT - 1, want.data());
  EXPECT_LT(test::rel_l2(got.data(), want.data(), Vp), 1e-5);
  for (int64_t j = kConfig.vocab_size; j < Vp; ++j) EXPECT_EQ(got[j], 0.0f) << "padding logit " << j;
  const SampleOptions opt{8, 1.0f, 5, 9};
  EXPECT_EQ(generate(sharded, {1, 2, 3}, kT, opt), generate(single, {1, 2, 3}, kT, opt));
}

// Generation through the KV cache, each rank caching its own heads' keys and values: the prefill's
// and every step's full-vocabulary logits equal the single process's full recompute (1e-5
// relative L2: fp32, the all-reduces and the cached path's GEMM shapes change the summation
// order), and sampling past the window (the sliding recompute) gives the single process's tokens,
// with the cache and without.
TEST_F(TensorParallel, KvCacheGenerationEqualsOneProcess) {
  if (world_size() % 2 != 0) GTEST_SKIP() << "world size is odd";
  auto group = split(world_rank() / 2, "tensor-parallel");
  CommunicatorTpGroup tp(*group);
  GPT sharded(kConfig, *be, 1, kT, &tp), single(kConfig, *be, 1, kT);
  sharded.init_weights(3);
  single.init_weights(3);
  std::vector<int32_t> x(kT), y(kT);
  sample_tokens(1, x.data(), y.data());
  const int64_t Vp = kConfig.padded_vocab();
  std::vector<float> got(Vp), want(Vp);
  sharded.cache_prefill(x.data(), 3, got.data());
  single.next_token_logits(x.data(), 3, want.data());
  EXPECT_LT(test::rel_l2(got.data(), want.data(), Vp), 1e-5) << "prefill";
  for (int64_t t = 3; t < kT; ++t) {
    sharded.cache_decode(x[t], got.data());
    single.next_token_logits(x.data(), t + 1, want.data());
    EXPECT_LT(test::rel_l2(got.data(), want.data(), Vp), 1e-5) << "step at position " << t;
  }
  SampleOptions opt{2 * kT, 1.0f, 5, 9};
  const std::vector<int32_t> want_tokens = generate(single, {1, 2, 3}, kT, opt);
  EXPECT_EQ(generate(sharded, {1, 2, 3}, kT, opt), want_tokens);
  opt.kv_cache = false;
  EXPECT_EQ(generate(sharded, {1, 2, 3}, kT, opt), want_tokens);
}

// A TpGroup that only answers size questions: the model must refuse to split before communicating.
class SizeOnlyGroup final : public TpGroup {
 public:
  explicit SizeOnlyGroup(int n) : n_(n) {}
  int rank() const override { return 0; }
  int size() const override { return n_; }
  void all_reduce_sum(Tensor&) override { ADD_FAILURE() << "collective on a refused model"; }
  void all_reduce_max(Tensor&) override { ADD_FAILURE() << "collective on a refused model"; }
  void all_reduce_avg(Tensor&) override { ADD_FAILURE() << "collective on a refused model"; }
  void all_gather(Tensor&, const Tensor&) override { ADD_FAILURE() << "collective on a refused model"; }

 private:
  int n_;
};

void expect_refused(const GPTConfig& cfg, int tp, const std::string& what) {
  SizeOnlyGroup group(tp);
  auto be = make_cpu_backend();
  try {
    GPT model(cfg, *be, 1, kT, &group);
    ADD_FAILURE() << "tp = " << tp << " accepted for " << what;
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("parallel.tp"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(TensorParallelLayout, RefusesShapesThatDoNotSplit) {
  expect_refused({2, 2, 16, 50, kT}, 4, "model.n_head");       // 2 heads over 4 ranks
  expect_refused({2, 3, 12, 50, kT}, 3, "padded vocabulary");  // 128 rows over 3 ranks
  expect_refused({1, 6, 6, 50, kT}, 6, "padded vocabulary");
}

}  // namespace
}  // namespace kervan
