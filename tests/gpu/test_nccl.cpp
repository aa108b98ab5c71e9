// The NCCL communicator on one GPU, as a group of one rank (bootstrapped over a SoloCommunicator,
// so no MPI is needed). One rank makes every collective an identity or a copy, which is what these
// tests check exactly, on fresh random data; what they exercise is the real path: the NCCL calls,
// the wait of NCCL's stream on the compute stream's event, the handle's event and the tensors it
// keeps alive. Two ranks need two processes: scripts/gpu-check.sh runs `mpirun -np 2` (and says
// what NCCL answers for two ranks on one GPU).
//
// Ordering is tested where a mistake would show: the input of an out-of-place collective is
// written by a long queue of GEMMs (milliseconds) issued just before it, so a collective that did
// not wait for the compute stream would copy a stale (NaN-poisoned) buffer.
//
// Tolerances: the collectives exact (a one-rank Avg divides by 1); a data-parallel step through
// GradientAllReducer, and ZeRO-1 through ShardedAdamW, against the same model without them:
// relative L2 1e-6 per tensor (the same kernels on the same values; only the sparse embedding
// rows are added in another order, after the all-gather, under GradientAllReducer).
#include <cstring>

#include "core/model/gpt.h"
#include "core/optim/adamw.h"
#include "core/rng.h"
#include "gpu_test.h"
#include "parallel/data_parallel.h"
#include "parallel/nccl_group.h"
#include "parallel/zero.h"

namespace kervan::gpu_test {
namespace {

class NcclTest : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    group = std::make_unique<SoloCommunicator>();
    move_group_to_device(group, "test", 120.0, *gpu);
  }
  // A [n, n] tensor on the GPU that the compute stream is still writing when this returns:
  // poisoned with NaN, then overwritten by `reps` accumulated GEMMs a b (queued, not finished).
  // The same a and b give the same bits again (cuBLAS is deterministic on one stream).
  Tensor busy_product(const Tensor& a, const Tensor& b, int reps) {
    const int64_t n = a.dim(0);
    Tensor y = gpu->empty({n, n}, DType::F32);
    gpu->fill(y, std::numeric_limits<float>::quiet_NaN());
    gpu->matmul(y, a, false, b, false, 1.0f, 0.0f);
    for (int r = 1; r < reps; ++r) gpu->matmul(y, a, false, b, false, 1.0f, 1.0f);
    return y;
  }
  Tensor busy_product(int64_t n, int reps) {
    return busy_product(rand({n, n}, 0.05f).gpu, rand({n, n}, 0.05f).gpu, reps);
  }
  std::vector<float> host(const Tensor& t) { return gpu->to_host<float>(t); }

  std::unique_ptr<Communicator> group;
};

TEST_F(NcclTest, OneRankCollectivesAreIdentitiesInStreamOrder) {
  ASSERT_EQ(group->size(), 1);
  ASSERT_EQ(group->rank(), 0);
  const int64_t n = 1536;
  const Tensor a = rand({n, n}, 0.05f).gpu, b = rand({n, n}, 0.05f).gpu;
  const std::vector<float> product = host(busy_product(a, b, 8));
  for (const ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    Tensor t = busy_product(a, b, 8);
    group->all_reduce(t, op);
    EXPECT_EQ(host(t), product) << "the all-reduce of one rank (op " << static_cast<int>(op)
                                << ") must leave the GEMMs' result as it is";
  }
  {
    Tensor in = busy_product(n, 8);
    Tensor out = poisoned({n * n}).gpu;
    auto handle = group->reduce_scatter_async(out, in.view({n * n}), ReduceOp::Avg);
    handle->wait();
    EXPECT_EQ(host(out), host(in)) << "reduce_scatter of one rank must copy its input, after the GEMMs";
    EXPECT_GE(handle->seconds(), 0.0);
  }
  {
    Tensor in = busy_product(n, 8);
    Tensor out = poisoned({n * n}).gpu;
    group->all_gather(out, in.view({n * n}));
    EXPECT_EQ(host(out), host(in)) << "all_gather of one rank must copy its input, after the GEMMs";
    // Compute after the collective: the host waited, so this reads the gathered values.
    Tensor twice = gpu->empty({n * n}, DType::F32);
    gpu->add(twice, out, out);
    const std::vector<float> o = host(out), w = host(twice);
    for (size_t i = 0; i < o.size(); i += 4099) ASSERT_EQ(w[i], 2 * o[i]) << "element " << i;
  }
  {
    // In place: the chunk of `out` is this rank's input.
    Tensor out = busy_product(n, 8).view({n * n});
    const std::vector<float> before = host(out);
    group->all_gather(out, out.slice_flat(0, {n * n}));
    EXPECT_EQ(host(out), before);
  }
  {
    Twin t = rand({7, 333});
    group->broadcast(t.gpu, 0);
    EXPECT_EQ(host(t.gpu), cpu->to_host<float>(t.cpu));
    Twin i = ints({1000}, -5, 1 << 20);
    group->all_reduce(i.gpu, ReduceOp::Sum);
    EXPECT_EQ(gpu->to_host<int32_t>(i.gpu), cpu->to_host<int32_t>(i.cpu));
  }
  group->barrier();
  // The rule of the groups: an NCCL group takes device tensors only.
  Tensor on_host = cpu->empty({4}, DType::F32);
  EXPECT_ANY_THROW(group->all_reduce(on_host, ReduceOp::Sum));
}

constexpr int64_t kB = 2, kT = 24;
const GPTConfig kConfig{2, 4, 64, 211, kT};

void batch(int step, std::vector<int32_t>& x, std::vector<int32_t>& y) {
  const uint64_t key = stream_key(7, "nccl-test");
  x.resize(kB * kT);
  y.resize(kB * kT);
  for (int64_t i = 0; i < kB * kT; ++i) {
    x[i] = static_cast<int32_t>(splitmix64(key ^ splitmix64(step * 1000 + i)) % kConfig.vocab_size);
    y[i] = static_cast<int32_t>(splitmix64(key ^ splitmix64(step * 1000 + i + 500)) % kConfig.vocab_size);
  }
}

// ||got - want|| / ||want|| of two tensors of one backend (infinity where got is not finite).
double rel_l2(Backend& be, const Tensor& got, const Tensor& want) {
  const std::vector<float> a = be.to_host<float>(got), b = be.to_host<float>(want);
  double d2 = 0, b2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    d2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    b2 += static_cast<double>(b[i]) * b[i];
  }
  return b2 > 0 ? std::sqrt(d2 / b2) : std::sqrt(d2);
}

void expect_same_params(Backend& be, GPT& got, GPT& want, const std::string& what) {
  auto w = want.params().all().begin();
  for (const Parameter& p : got.params().all()) {
    EXPECT_LE(rel_l2(be, p.value, w->value), 1e-6) << what << ": " << p.name;
    ++w;
  }
}

TEST_F(NcclTest, DataParallelStepThroughAnNcclGroupOfOneEqualsThePlainStep) {
  GPT with(kConfig, *gpu, kB, kT), plain(kConfig, *gpu, kB, kT);
  with.init_weights(3);
  plain.init_weights(3);
  // Small buckets: several all-reduces start from the grad-ready hook while backward's kernels
  // for them are still queued, and GPT's token embedding takes the sparse-rows path.
  GradientAllReducer reducer(with, *group, /*bucket_bytes=*/64 * 1024);
  ASSERT_GT(reducer.num_buckets(), 3);
  AdamW opt_with(with.params(), *gpu, AdamWConfig{}), opt_plain(plain.params(), *gpu, AdamWConfig{});
  std::vector<int32_t> x, y;
  for (int step = 0; step < 3; ++step) {
    batch(step, x, y);
    with.params().zero_grad(*gpu);
    plain.params().zero_grad(*gpu);
    const float lw = with.forward(x.data(), y.data(), kB, kT), lp = plain.forward(x.data(), y.data(), kB, kT);
    EXPECT_NEAR(lw, lp, 1e-6 * std::abs(lp)) << "step " << step;
    reducer.begin();
    with.backward(1.0f);
    plain.backward(1.0f);
    reducer.finish();
    auto q = plain.params().all().begin();
    for (const Parameter& p : with.params().all()) {
      EXPECT_LE(rel_l2(*gpu, p.grad, q->grad), 1e-6) << "step " << step << " gradient of " << p.name;
      ++q;
    }
    opt_with.step(1e-3f, 1.0f);
    opt_plain.step(1e-3f, 1.0f);
  }
  expect_same_params(*gpu, with, plain, "after 3 data-parallel steps");
}

TEST_F(NcclTest, Zero1ThroughAnNcclGroupOfOneEqualsPlainAdamW) {
  GPT sharded(kConfig, *gpu, kB, kT), plain(kConfig, *gpu, kB, kT);
  sharded.init_weights(4);
  plain.init_weights(4);
  ShardedAdamW zero(sharded.params(), *group, *gpu, AdamWConfig{});
  AdamW adamw(plain.params(), *gpu, AdamWConfig{});
  std::vector<int32_t> x, y;
  for (int step = 0; step < 3; ++step) {
    batch(step, x, y);
    sharded.params().zero_grad(*gpu);
    plain.params().zero_grad(*gpu);
    sharded.forward(x.data(), y.data(), kB, kT);
    plain.forward(x.data(), y.data(), kB, kT);
    sharded.backward(1.0f);
    plain.backward(1.0f);
    // reduce-scatter (a copy for one rank) straight after backward's kernels, then the norm.
    const float norm = zero.reduce_gradients();
    const double want = std::sqrt(gpu->sum_squares(plain.params().grads()));
    EXPECT_NEAR(norm, want, 1e-6 * want) << "step " << step;
    zero.step(1e-3f, clip_factor(norm, 1.0f));
    adamw.step(1e-3f, clip_factor(static_cast<float>(want), 1.0f));
  }
  expect_same_params(*gpu, sharded, plain, "after 3 ZeRO-1 steps");
}

}  // namespace
}  // namespace kervan::gpu_test
