// The single-process pieces of tensor parallelism: shard -> global index maps, sharded
// initialisation from the global streams, and the vocabulary-parallel cross-entropy kernels
// (shards combined here on the host the way the model combines them with all-reduces).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "../common/compare.h"
#include "core/cpu/cpu_backend.h"
#include "core/backend.h"
#include "core/parameters.h"
#include "fd_check.h"

namespace kervan::test {
namespace {

TEST(Sharding, FusedQkvRowsSplitPerBlock) {
  // Global [6, 2] = 3 blocks (q, k, v) of 2 rows; 2 parts: rank k holds row k of every block.
  const Shape local{3, 2};
  std::set<int64_t> seen;
  for (int r = 0; r < 2; ++r) {
    const Sharding s = Sharding::rows(2, r, 3);
    EXPECT_EQ(s.global_shape(local), (Shape{6, 2}));
    for (int64_t i = 0; i < 6; ++i) seen.insert(s.global_index(local, i));
  }
  EXPECT_EQ(seen.size(), 12u) << "shards must cover the global tensor exactly once";
  const Sharding s1 = Sharding::rows(2, 1, 3);
  EXPECT_EQ(s1.global_index(local, 0), 1 * 2);          // q rows: global row 1
  EXPECT_EQ(s1.global_index(local, 2 + 1), 3 * 2 + 1);  // k rows: global row 3, column 1
  EXPECT_EQ(s1.global_index(local, 4), 5 * 2);          // v rows: global row 5
}

TEST(Sharding, ColumnsSplit) {
  // Global [2, 6]; rank 2 of 3 holds columns 4..5.
  const Sharding s = Sharding::cols(3, 2);
  EXPECT_EQ(s.global_shape({2, 2}), (Shape{2, 6}));
  EXPECT_EQ(s.global_index({2, 2}, 0), 4);
  EXPECT_EQ(s.global_index({2, 2}, 3), 6 + 5);
  EXPECT_EQ(Sharding{}.global_index({2, 2}, 3), 3);
}

TEST(Sharding, ShardsStartFromTheGlobalValues) {
  auto be = make_cpu_backend();
  const Init init{Init::Kind::Normal, 1.0f, /*init_rows=*/5};  // rows >= 5 stay zero (padding)
  ParameterSet whole;
  whole.declare("w", {8, 3}, init, true);
  whole.allocate(*be);
  whole.initialize(*be, 42);
  const float* g = whole.all()[0].value.data<float>();
  for (int r = 0; r < 4; ++r) {
    ParameterSet part;
    part.declare("w", {2, 3}, init, true, Sharding::rows(4, r));
    part.allocate(*be);
    part.initialize(*be, 42);
    const Parameter& p = part.all()[0];
    for (int64_t i = 0; i < 6; ++i)
      EXPECT_EQ(p.value.data<float>()[i], g[p.sharding.global_index(p.shape, i)]);
  }
  EXPECT_EQ(g[5 * 3], 0.0f);
  EXPECT_NE(g[4 * 3], 0.0f);
}

// Global logits [N, Vp] over `vocab` real tokens, split into `parts` column shards.
class VocabParallelCe : public ::testing::TestWithParam<int> {};

TEST_P(VocabParallelCe, ShardsCombineToTheFullCrossEntropy) {
  const int parts = GetParam();
  const int64_t N = 5, vocab = 5, Vp = 8, Vl = Vp / parts;
  auto be = make_cpu_backend();
  Tensor logits = be->empty({N, Vp}, DType::F32);
  fill_normal(logits, 3, 2.0f);
  Tensor targets = be->empty({N}, DType::I32);
  const int32_t t[N] = {0, 4, 2, -1, 3};
  be->copy_from_host(targets, t);
  Tensor losses = be->empty({N}, DType::F32), dfull = be->empty({N, Vp}, DType::F32);
  be->cross_entropy_forward(losses, logits, targets, vocab);
  be->cross_entropy_backward(dfull, logits, targets, vocab, 0.5f);

  std::vector<Tensor> shards;
  for (int k = 0; k < parts; ++k) {
    Tensor s = be->empty({N, Vl}, DType::F32);
    for (int64_t n = 0; n < N; ++n)
      std::copy_n(logits.data<float>() + n * Vp + k * Vl, Vl, s.data<float>() + n * Vl);
    shards.push_back(s);
  }
  auto valid = [&](int k) { return std::clamp<int64_t>(vocab - k * Vl, 0, Vl); };
  Tensor mx = be->empty({N}, DType::F32), part = be->empty({N}, DType::F32);
  std::vector<float> gmax(N, std::numeric_limits<float>::lowest()), sum(N, 0.0f), tgt(N, 0.0f);
  for (int k = 0; k < parts; ++k) {  // all-reduce max
    be->vocab_parallel_row_max(part, shards[k], valid(k));
    for (int64_t n = 0; n < N; ++n) gmax[n] = std::max(gmax[n], part.data<float>()[n]);
  }
  be->copy_from_host(mx, gmax.data());
  Tensor s = be->empty({N}, DType::F32), g = be->empty({N}, DType::F32);
  for (int k = 0; k < parts; ++k) {  // all-reduce sum
    be->vocab_parallel_exp_sum_target(s, g, shards[k], mx, targets, k * Vl, valid(k));
    for (int64_t n = 0; n < N; ++n) {
      sum[n] += s.data<float>()[n];
      tgt[n] += g.data<float>()[n];
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] < 0) continue;
    EXPECT_NEAR(std::log(sum[n]) + gmax[n] - tgt[n], losses.data<float>()[n], 1e-5) << "row " << n;
  }
  be->copy_from_host(s, sum.data());
  for (int k = 0; k < parts; ++k) {
    Tensor d = be->empty({N, Vl}, DType::F32);
    be->vocab_parallel_cross_entropy_backward(d, shards[k], mx, s, targets, k * Vl, valid(k), 0.5f);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < Vl; ++j)
        EXPECT_NEAR(d.data<float>()[n * Vl + j], dfull.data<float>()[n * Vp + k * Vl + j], 1e-6)
            << "shard " << k << " row " << n << " column " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(Parts, VocabParallelCe, ::testing::Values(1, 2, 4));  // 4: a shard of padding only

TEST(VocabParallelEmbedding, NegativeIdsLookUpZeroRowsAndGetNoGradient) {
  auto be = make_cpu_backend();
  Tensor wte = be->empty({2, 3}, DType::F32), wpe = be->zeros({2, 3}), out = be->empty({1, 2, 3}, DType::F32);
  be->fill(wte, 1.0f);
  Tensor ids = be->empty({1, 2}, DType::I32);
  const int32_t id[2] = {1, -1};
  be->copy_from_host(ids, id);
  be->embedding_forward(out, ids, wte, wpe);
  EXPECT_EQ(out.data<float>()[0], 1.0f);
  EXPECT_EQ(out.data<float>()[3], 0.0f);
  Tensor grad = be->zeros({2, 3}), rows = be->empty({2, 3}, DType::F32);
  be->fill(rows, 2.0f);
  be->scatter_add_rows(grad, rows, ids, 1.0f);
  EXPECT_EQ(grad.data<float>()[0], 0.0f);
  EXPECT_EQ(grad.data<float>()[3], 2.0f);
}

}  // namespace
}  // namespace kervan::test
