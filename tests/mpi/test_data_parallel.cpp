// Data parallelism against the single-process run with the same global batch.
//
// Each rank trains a tiny GPT for 5 steps twice, both through TrainStep (the recipe kervan train
// uses): once data-parallel (its slice of every global batch, gradients averaged in small buckets
// so several are in flight, or reduce-scattered under ZeRO-1), and once alone on the whole global
// batch. The two differ only in fp32 summation order (a mean
// of per-rank means vs one mean), so parameters agree to relative L2 1e-4 per tensor; the key
// bias of c_attn is the exception, because its true gradient is 0 and Adam turns rounding noise
// into steps of +-lr, so it is held to Adam's bound of lr per step (see test_gpt_parity.cpp).
#include <gtest/gtest.h>
#include <mpi.h>

#include "../common/compare.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "parallel/mpi_communicator.h"
#include "parallel/train_step.h"

namespace kervan {
namespace {

constexpr int64_t kT = 16;
constexpr float kLr = 1e-2f;
constexpr int kSteps = 5;
const GPTConfig kConfig{2, 2, 16, 50, kT};

// Tokens of sample k of the run.
void sample_tokens(int64_t k, int32_t* x, int32_t* y) {
  const uint64_t key = stream_key(5, "dp-test");
  for (int64_t t = 0; t <= kT; ++t) {
    const auto tok =
        static_cast<int32_t>(splitmix64(key ^ splitmix64(k * (kT + 1) + t)) % kConfig.vocab_size);
    if (t < kT) x[t] = tok;
    if (t > 0) y[t - 1] = tok;
  }
}

// Trains kSteps steps; micro-step m of DP rank r reads samples [m*B*dp + r*B, +B) of the step.
// With `zero`, gradients are reduce-scattered and AdamW's state sharded (ZeRO-1).
std::vector<float> train(Backend& be, Communicator* dp, int64_t B, int64_t accum, bool zero = false) {
  GPT model(kConfig, be, B, kT);
  model.init_weights(11);
  TrainStep train_step(model, {0.9f, 0.95f, 1e-8f, 0.1f}, {dp, nullptr, zero, /*bucket_bytes=*/4096});
  if (dp && zero) {
    const int64_t n = model.params().numel();
    EXPECT_LE(train_step.optimizer_state_numel(), 2 * (n / dp->size() + 1))
        << "optimizer state must divide by DP size";
  } else if (dp) {
    EXPECT_GT(train_step.num_buckets(), 3);
  }
  const int64_t n = dp ? dp->size() : 1, r = dp ? dp->rank() : 0;
  std::vector<int32_t> x(B * kT), y(B * kT);
  for (int step = 0; step < kSteps; ++step) {
    model.params().zero_grad(be);
    for (int64_t m = 0; m < accum; ++m) {
      for (int64_t b = 0; b < B; ++b)
        sample_tokens(step * B * n * accum + (m * n + r) * B + b, &x[b * kT], &y[b * kT]);
      model.forward(x.data(), y.data(), B, kT);
      if (m == accum - 1) train_step.before_last_backward();
      model.backward(1.0f / static_cast<float>(accum));
    }
    train_step.step(kLr, clip_factor(train_step.reduce_gradients(), 1.0f));
  }
  return be.to_host<float>(model.params().values());
}

void expect_same_model(Backend& be, const std::vector<float>& got, const std::vector<float>& want) {
  GPT names(kConfig, be, 1, kT);
  for (Parameter& p : names.params().all()) {
    std::vector<float> g(got.begin() + p.offset, got.begin() + p.offset + p.value.numel());
    std::vector<float> w(want.begin() + p.offset, want.begin() + p.offset + p.value.numel());
    if (p.name.ends_with(".attn.c_attn.bias")) {
      for (int64_t i = kConfig.d_model; i < 2 * kConfig.d_model; ++i) {
        EXPECT_LE(std::abs(g[i] - w[i]), kSteps * kLr * 1.01f) << p.name;
        g[i] = w[i];
      }
    }
    EXPECT_LT(test::rel_l2(g.data(), w.data(), static_cast<int64_t>(g.size())), 1e-4) << p.name;
  }
}

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    dp = std::make_unique<MpiCommunicator>(c, "data-parallel", 60.0);
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<MpiCommunicator> dp;
};

TEST_F(DataParallel, EqualsOneProcessWithTheSameGlobalBatch) {
  const auto parallel = train(*be, dp.get(), 2, 1);
  const auto single = train(*be, nullptr, 2 * dp->size(), 1);
  expect_same_model(*be, parallel, single);
  // Every rank ends with bit-identical parameters.
  std::vector<float> rank0 = parallel;
  MPI_Bcast(rank0.data(), static_cast<int>(rank0.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_TRUE(rank0 == parallel) << "parameters diverged across data-parallel ranks";
}

TEST_F(DataParallel, Zero1EqualsPlainDataParallel) {
  const auto zero = train(*be, dp.get(), 2, 2, /*zero=*/true);
  const auto plain = train(*be, dp.get(), 2, 2);
  expect_same_model(*be, zero, plain);
  std::vector<float> rank0 = zero;
  MPI_Bcast(rank0.data(), static_cast<int>(rank0.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_TRUE(rank0 == zero) << "parameters diverged across ranks under ZeRO-1";
}

TEST_F(DataParallel, AccumulationTimesDpEqualsOneLargeBatch) {
  const auto parallel = train(*be, dp.get(), 2, 3);
  const auto single = train(*be, nullptr, 2 * 3 * dp->size(), 1);
  expect_same_model(*be, parallel, single);
}

}  // namespace
}  // namespace kervan
