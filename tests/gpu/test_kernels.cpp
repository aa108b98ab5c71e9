// Every CUDA kernel against its CPU twin, on fresh random inputs at several shapes, odd ones
// included. Both sides compute in fp32 with different summation orders, FMA contraction and libm,
// so the tolerances (relative L2 error over the whole output, METHOD.md: fp32 lands far under
// 1e-3) are:
//   2e-6  elementwise kernels (add, bias, activations, embedding rows, AdamW, recurrent gates):
//         a few ulps per element from FMA contraction and the device's tanhf/erff/expf
//   1e-5  reductions over rows or columns (norms, softmax, cross-entropy, column sums, GEMM,
//         attention's output): summation order over up to ~10^3 terms
//   5e-5  attention gradients: dS = P (dP - D) subtracts nearly equal numbers per row
//   1e-12 sum_squares (double accumulation on both sides)
#include <algorithm>

#include "gpu_test.h"

namespace kervan::gpu_test {
namespace {

constexpr double kElementwise = 2e-6, kReduction = 1e-5, kAttentionGrad = 5e-5;

TEST_F(GpuTest, FillWritesEveryElement) {
  for (int64_t n : {1, 1000, 1 << 20}) {
    Twin f = poisoned({n});
    cpu->fill(f.cpu, 0.75f);
    gpu->fill(f.gpu, 0.75f);
    EXPECT_EQ(rel_err(f), 0.0) << n;
    Tensor i = gpu->empty({n}, DType::I32);
    gpu->fill(i, -3.0f);
    const auto v = gpu->to_host<int32_t>(i);
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](int32_t x) { return x == -3; })) << n;
  }
}

TEST_F(GpuTest, MatmulAllTranspositions) {
  struct Case {
    int64_t m, k, n;
  };
  for (const Case c : {Case{1, 1, 1}, Case{3, 5, 7}, Case{64, 768, 129}, Case{257, 33, 1000}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f}) {
          Twin a = rand(ta ? Shape{c.k, c.m} : Shape{c.m, c.k});
          Twin b = rand(tb ? Shape{c.n, c.k} : Shape{c.k, c.n});
          Twin y = beta == 0.0f ? poisoned({c.m, c.n}) : rand({c.m, c.n});
          cpu->matmul(y.cpu, a.cpu, ta, b.cpu, tb, 0.5f, beta);
          gpu->matmul(y.gpu, a.gpu, ta, b.gpu, tb, 0.5f, beta);
          EXPECT_LT(rel_err(y), kReduction)
              << shape_name({c.m, c.k, c.n}) << " ta " << ta << " tb " << tb << " beta " << beta;
        }
}

TEST_F(GpuTest, BiasAddAndBiasBackward) {
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {4096, 768}, {3, 50304}}) {
    Twin y = rand({N, C}), bias = rand({C});
    cpu->add_bias(y.cpu, bias.cpu);
    gpu->add_bias(y.gpu, bias.gpu);
    EXPECT_LT(rel_err(y), kElementwise) << shape_name({N, C});
    Twin db = rand({C});
    cpu->bias_backward(db.cpu, y.cpu);
    gpu->bias_backward(db.gpu, y.gpu);
    EXPECT_LT(rel_err(db), kReduction) << shape_name({N, C});
  }
}

TEST_F(GpuTest, AddAndSumSquares) {
  for (int64_t n : {1, 1001, 3'000'001}) {
    Twin a = rand({n}), b = rand({n}), out = poisoned({n});
    cpu->add(out.cpu, a.cpu, b.cpu);
    gpu->add(out.gpu, a.gpu, b.gpu);
    EXPECT_LT(rel_err(out), kElementwise) << n;
    gpu->add(a.gpu, a.gpu, b.gpu);  // out may alias an input
    cpu->add(a.cpu, a.cpu, b.cpu);
    EXPECT_LT(rel_err(a), kElementwise) << n;
    const double want = cpu->sum_squares(a.cpu), got = gpu->sum_squares(a.gpu);
    EXPECT_NEAR(got, want, 1e-12 * want) << n;
  }
}

TEST_F(GpuTest, EmbeddingGatherScatterAndPositions) {
  struct Case {
    int64_t B, T, C, V;
  };
  for (const Case c : {Case{1, 1, 1, 2}, Case{2, 7, 33, 50}, Case{4, 64, 768, 1000}}) {
    // Ids in [-1, V): -1 is a token outside this rank's vocabulary shard.
    Twin tok = ints({c.B, c.T}, -1, static_cast<int32_t>(c.V - 1));
    Twin wte = rand({c.V, c.C}), wpe = rand({c.T + 3, c.C}), out = poisoned({c.B, c.T, c.C});
    cpu->embedding_forward(out.cpu, tok.cpu, wte.cpu, wpe.cpu);
    gpu->embedding_forward(out.gpu, tok.gpu, wte.gpu, wpe.gpu);
    EXPECT_LT(rel_err(out), kElementwise) << "embedding " << shape_name({c.B, c.T, c.C});

    Twin rows = poisoned({c.B * c.T, c.C});
    cpu->gather_rows(rows.cpu, wte.cpu, tok.cpu, false);
    gpu->gather_rows(rows.gpu, wte.gpu, tok.gpu, false);
    EXPECT_LT(rel_err(rows), kElementwise) << "gather";
    Twin acc = rand({c.B * c.T, c.C});
    cpu->gather_rows(acc.cpu, wte.cpu, tok.cpu, true);
    gpu->gather_rows(acc.gpu, wte.gpu, tok.gpu, true);
    EXPECT_LT(rel_err(acc), kElementwise) << "gather, accumulating";

    Twin table = rand({c.V, c.C}), grads = rand({c.B * c.T, c.C});
    cpu->scatter_add_rows(table.cpu, grads.cpu, tok.cpu, 0.5f);
    gpu->scatter_add_rows(table.gpu, grads.gpu, tok.gpu, 0.5f);
    EXPECT_LT(rel_err(table), kReduction) << "scatter_add_rows";

    Twin dwpe = rand({c.T + 3, c.C}), dout = rand({c.B, c.T, c.C});
    cpu->position_embedding_backward(dwpe.cpu, dout.cpu);
    gpu->position_embedding_backward(dwpe.gpu, dout.gpu);
    EXPECT_LT(rel_err(dwpe), kReduction) << "position_embedding_backward";
  }
}

TEST_F(GpuTest, LayerNormForwardAndBackward) {
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 2}, {7, 33}, {512, 768}, {3, 1025}}) {
    Twin x = rand({N, C}, 2.0f), w = rand({C}), b = rand({C});
    Twin out = poisoned({N, C}), mean = poisoned({N}), rstd = poisoned({N});
    cpu->layernorm_forward(out.cpu, mean.cpu, rstd.cpu, x.cpu, w.cpu, b.cpu, 1e-5f);
    gpu->layernorm_forward(out.gpu, mean.gpu, rstd.gpu, x.gpu, w.gpu, b.gpu, 1e-5f);
    EXPECT_LT(rel_err(out), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(mean), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(rstd), kReduction) << shape_name({N, C});
    Twin dout = rand({N, C}), dx = poisoned({N, C}), dw = rand({C}), db = rand({C});
    cpu->layernorm_backward(dx.cpu, dw.cpu, db.cpu, dout.cpu, x.cpu, w.cpu, mean.cpu, rstd.cpu);
    gpu->layernorm_backward(dx.gpu, dw.gpu, db.gpu, dout.gpu, x.gpu, w.gpu, mean.gpu, rstd.gpu);
    EXPECT_LT(rel_err(dx), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(dw), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(db), kReduction) << shape_name({N, C});
  }
}

TEST_F(GpuTest, RmsNormForwardAndBackward) {
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {512, 768}, {3, 1025}}) {
    Twin x = rand({N, C}, 2.0f), w = rand({C}), out = poisoned({N, C}), rstd = poisoned({N});
    cpu->rmsnorm_forward(out.cpu, rstd.cpu, x.cpu, w.cpu, 1e-6f);
    gpu->rmsnorm_forward(out.gpu, rstd.gpu, x.gpu, w.gpu, 1e-6f);
    EXPECT_LT(rel_err(out), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(rstd), kReduction) << shape_name({N, C});
    Twin dout = rand({N, C}), dx = poisoned({N, C}), dw = rand({C});
    cpu->rmsnorm_backward(dx.cpu, dw.cpu, dout.cpu, x.cpu, w.cpu, rstd.cpu);
    gpu->rmsnorm_backward(dx.gpu, dw.gpu, dout.gpu, x.gpu, w.gpu, rstd.gpu);
    EXPECT_LT(rel_err(dx), kReduction) << shape_name({N, C});
    EXPECT_LT(rel_err(dw), kReduction) << shape_name({N, C});
  }
}

TEST_F(GpuTest, ActivationsAndGatedUnits) {
  for (Activation act : {Activation::GeluTanh, Activation::GeluErf, Activation::Relu, Activation::Tanh})
    for (auto [N, H] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {256, 3072}}) {
      const std::string what =
          "activation " + std::to_string(static_cast<int>(act)) + " " + shape_name({N, H});
      Twin x = rand({N, H}, 3.0f), out = poisoned({N, H}), dout = rand({N, H}), dx = poisoned({N, H});
      cpu->activation_forward(out.cpu, x.cpu, act);
      gpu->activation_forward(out.gpu, x.gpu, act);
      EXPECT_LT(rel_err(out), kElementwise) << what;
      cpu->activation_backward(dx.cpu, x.cpu, dout.cpu, act);
      gpu->activation_backward(dx.gpu, x.gpu, dout.gpu, act);
      EXPECT_LT(rel_err(dx), kElementwise) << what;

      Twin g = rand({N, 2 * H}, 3.0f), gout = poisoned({N, H}), gdx = poisoned({N, 2 * H});
      cpu->gated_activation_forward(gout.cpu, g.cpu, act);
      gpu->gated_activation_forward(gout.gpu, g.gpu, act);
      EXPECT_LT(rel_err(gout), kElementwise) << "gated " << what;
      cpu->gated_activation_backward(gdx.cpu, g.cpu, dout.cpu, act);
      gpu->gated_activation_backward(gdx.gpu, g.gpu, dout.gpu, act);
      EXPECT_LT(rel_err(gdx), kElementwise) << "gated " << what;
    }
}

// Attention over a fused q|k|v [B, T, 3I] (self) or q [B, Tq, I] with k|v [B, Tk, 2I] (cross):
// causal or not, padded keys, a T5 bias, head sizes that leave lanes idle (5, 96, 200).
struct AttentionCase {
  int64_t B, Tq, Tk, NH, hs;
  bool causal, padding, bias;
};

// The exact fp32 kernel (core/cuda/attention.cu): the backend's precision is F32 unless set, and at
// F32 every attention runs it. test_attention_flash.cpp tests the BF16 tensor-core kernel.
TEST_F(GpuTest, AttentionForwardAndBackward) {
  ASSERT_EQ(gpu->precision(), Precision::F32);
  const AttentionCase cases[] = {
      {1, 1, 1, 1, 1, true, false, false},     {2, 7, 7, 3, 5, true, false, false},
      {2, 33, 33, 2, 64, true, false, false},  {1, 130, 130, 4, 96, true, false, false},
      {3, 9, 9, 2, 8, false, true, false},     {2, 12, 12, 3, 16, false, true, true},
      {2, 5, 11, 2, 200, false, true, false},  // cross-attention: more keys than queries
      {2, 64, 64, 12, 64, true, false, false},
  };
  for (const AttentionCase& c : cases) {
    const std::string what = shape_name({c.B, c.Tq, c.Tk, c.NH, c.hs}) + (c.causal ? " causal" : "") +
                             (c.padding ? " padded" : "") + (c.bias ? " bias" : "");
    const int64_t I = c.NH * c.hs;
    Twin q = rand({c.B, c.Tq, I}), kv = rand({c.B, c.Tk, 3 * I});  // k, v at columns I and 2I of kv
    std::vector<int32_t> lengths(c.B, static_cast<int32_t>(c.Tk));
    if (c.padding)
      for (int64_t b = 0; b < c.B; ++b) lengths[b] = static_cast<int32_t>(1 + (b * 7 + 3) % c.Tk);
    Twin len = from_host_i32({c.B}, lengths);
    Twin bias = rand({c.NH, c.Tq, c.Tk});
    auto spec = [&](bool on_gpu) {
      AttentionSpec s;
      s.n_head = static_cast<int>(c.NH);
      s.scale = 1.0f / std::sqrt(static_cast<float>(c.hs));
      s.causal = c.causal;
      s.key_lengths = c.padding ? (on_gpu ? &len.gpu : &len.cpu) : nullptr;
      s.bias = c.bias ? (on_gpu ? &bias.gpu : &bias.cpu) : nullptr;
      return s;
    };
    Twin out = poisoned({c.B, c.Tq, I});
    Tensor saved_c = cpu->empty(cpu->attention_saved_shape(c.B, c.NH, c.Tq, c.Tk), DType::F32);
    Tensor saved_g = gpu->empty(gpu->attention_saved_shape(c.B, c.NH, c.Tq, c.Tk), DType::F32);
    EXPECT_EQ(saved_g.numel(), c.B * c.NH * c.Tq) << "the GPU saves row statistics, not probabilities";
    cpu->attention_forward(out.cpu, saved_c, ColumnBlock::of(q.cpu, 0, I), ColumnBlock::of(kv.cpu, I, I),
                           ColumnBlock::of(kv.cpu, 2 * I, I), spec(false));
    gpu->attention_forward(out.gpu, saved_g, ColumnBlock::of(q.gpu, 0, I), ColumnBlock::of(kv.gpu, I, I),
                           ColumnBlock::of(kv.gpu, 2 * I, I), spec(true));
    EXPECT_LT(rel_err(out), kReduction) << what;

    // Gradients into blocks of one tensor, as the layers lay them out; the unused block stays NaN.
    Twin dout = rand({c.B, c.Tq, I}), dq = poisoned({c.B, c.Tq, I}), dkv = poisoned({c.B, c.Tk, 3 * I});
    Tensor ds_c = cpu->empty(cpu->attention_scratch_shape(c.B, c.NH, c.Tq, c.Tk, c.bias), DType::F32);
    Tensor ds_g = gpu->empty(gpu->attention_scratch_shape(c.B, c.NH, c.Tq, c.Tk, c.bias), DType::F32);
    cpu->attention_backward(ColumnBlock::of(dq.cpu, 0, I), ColumnBlock::of(dkv.cpu, I, I),
                            ColumnBlock::of(dkv.cpu, 2 * I, I), ds_c, dout.cpu, out.cpu,
                            ColumnBlock::of(q.cpu, 0, I), ColumnBlock::of(kv.cpu, I, I),
                            ColumnBlock::of(kv.cpu, 2 * I, I), saved_c, spec(false));
    gpu->attention_backward(ColumnBlock::of(dq.gpu, 0, I), ColumnBlock::of(dkv.gpu, I, I),
                            ColumnBlock::of(dkv.gpu, 2 * I, I), ds_g, dout.gpu, out.gpu,
                            ColumnBlock::of(q.gpu, 0, I), ColumnBlock::of(kv.gpu, I, I),
                            ColumnBlock::of(kv.gpu, 2 * I, I), saved_g, spec(true));
    EXPECT_LT(rel_err(dq), kAttentionGrad) << "dq " << what;
    // Only the k and v blocks of dkv were written: compare those columns.
    const std::vector<float> g = gpu->to_host<float>(dkv.gpu), r = cpu->to_host<float>(dkv.cpu);
    double d2 = 0, r2 = 0;
    bool all_finite = true;
    for (int64_t row = 0; row < c.B * c.Tk; ++row)
      for (int64_t col = I; col < 3 * I; ++col) {
        const float a = g[row * 3 * I + col], b = r[row * 3 * I + col];
        all_finite = all_finite && std::isfinite(a);
        d2 += (static_cast<double>(a) - b) * (static_cast<double>(a) - b);
        r2 += static_cast<double>(b) * b;
      }
    EXPECT_TRUE(all_finite) << "dk/dv not fully written: " << what;
    EXPECT_LT(std::sqrt(d2 / std::max(r2, 1e-30)), kAttentionGrad) << "dk, dv " << what;
    if (c.bias) {
      Twin ds{ds_c, ds_g};
      EXPECT_LT(rel_err(ds), kAttentionGrad) << "dS " << what;
    }
  }
}

TEST_F(GpuTest, RelativeBiasForwardAndBackward) {
  for (auto [T, NB, NH] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {9, 32, 3}, {128, 32, 8}}) {
    Twin table = rand({NB, NH}), buckets = ints({T, T}, 0, static_cast<int32_t>(NB - 1));
    Twin bias = poisoned({NH, T, T});
    cpu->relative_bias_forward(bias.cpu, table.cpu, buckets.cpu);
    gpu->relative_bias_forward(bias.gpu, table.gpu, buckets.gpu);
    EXPECT_EQ(rel_err(bias), 0.0) << shape_name({T, NB, NH});
    Twin dbias = rand({NH, T, T}), dtable = rand({NB, NH});
    cpu->relative_bias_backward(dtable.cpu, dbias.cpu, buckets.cpu);
    gpu->relative_bias_backward(dtable.gpu, dbias.gpu, buckets.gpu);
    EXPECT_LT(rel_err(dtable), kReduction) << shape_name({T, NB, NH});
  }
}

TEST_F(GpuTest, CrossEntropyForwardAndBackward) {
  for (auto [N, V] : {std::pair<int64_t, int64_t>{1, 1}, {7, 50}, {64, 50257}}) {
    const int64_t Vp = (V + 127) / 128 * 128;
    Twin logits = rand({N, Vp}, 3.0f), targets = ints({N}, -1, static_cast<int32_t>(V - 1));
    Twin losses = poisoned({N});
    cpu->cross_entropy_forward(losses.cpu, logits.cpu, targets.cpu, V);
    gpu->cross_entropy_forward(losses.gpu, logits.gpu, targets.gpu, V);
    EXPECT_LT(rel_err(losses), kReduction) << shape_name({N, V});
    Twin dlogits = poisoned({N, Vp});
    cpu->cross_entropy_backward(dlogits.cpu, logits.cpu, targets.cpu, V, 0.25f);
    gpu->cross_entropy_backward(dlogits.gpu, logits.gpu, targets.gpu, V, 0.25f);
    EXPECT_LT(rel_err(dlogits), kReduction) << shape_name({N, V});
    cpu->cross_entropy_backward(logits.cpu, logits.cpu, targets.cpu, V, 0.25f);  // in place
    gpu->cross_entropy_backward(logits.gpu, logits.gpu, targets.gpu, V, 0.25f);
    EXPECT_LT(rel_err(logits), kReduction) << "in place " << shape_name({N, V});
  }
}

TEST_F(GpuTest, VocabParallelCrossEntropyPieces) {
  // This rank: columns [col0, col0 + Vl) of which `valid` are real tokens.
  for (auto [N, Vl, valid, col0] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 0},
                                    {7, 64, 50, 64},
                                    {33, 128, 0, 256},
                                    {64, 25216, 25088, 25216}}) {
    const std::string what = shape_name({N, Vl, valid, col0});
    Twin logits = rand({N, Vl}, 3.0f), targets = ints({N}, -1, static_cast<int32_t>(col0 + Vl + 5));
    Twin mx = poisoned({N}), sum = poisoned({N}), tgt = poisoned({N});
    cpu->vocab_parallel_row_max(mx.cpu, logits.cpu, valid);
    gpu->vocab_parallel_row_max(mx.gpu, logits.gpu, valid);
    EXPECT_LT(rel_err(mx), kReduction) << what;  // valid == 0: the lowest float on both
    if (valid == 0) continue;                    // no real column here: nothing to sum
    cpu->vocab_parallel_exp_sum_target(sum.cpu, tgt.cpu, logits.cpu, mx.cpu, targets.cpu, col0, valid);
    gpu->vocab_parallel_exp_sum_target(sum.gpu, tgt.gpu, logits.gpu, mx.gpu, targets.gpu, col0, valid);
    EXPECT_LT(rel_err(sum), kReduction) << what;
    EXPECT_LT(rel_err(tgt), kElementwise) << what;
    Twin dlogits = poisoned({N, Vl});
    cpu->vocab_parallel_cross_entropy_backward(dlogits.cpu, logits.cpu, mx.cpu, sum.cpu, targets.cpu, col0,
                                               valid, 0.5f);
    gpu->vocab_parallel_cross_entropy_backward(dlogits.gpu, logits.gpu, mx.gpu, sum.gpu, targets.gpu, col0,
                                               valid, 0.5f);
    EXPECT_LT(rel_err(dlogits), kReduction) << what;
  }
}

TEST_F(GpuTest, RecurrentCellsForwardAndBackward) {
  for (RecurrentCell cell : {RecurrentCell::Rnn, RecurrentCell::Lstm, RecurrentCell::Gru})
    for (auto [B, H] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {64, 512}}) {
      const int64_t G = cell == RecurrentCell::Rnn ? 1 : cell == RecurrentCell::Lstm ? 4 : 3;
      const std::string what = "cell " + std::to_string(static_cast<int>(cell)) + " " + shape_name({B, H});
      Twin xg = rand({B, G * H}), hg = rand({B, G * H}), b_hh = rand({G * H}), h_prev = rand({B, H}),
           c_prev = rand({B, H});
      Twin h = poisoned({B, H}), c = poisoned({B, H}), saved = poisoned({B, 4 * H});
      cpu->recurrent_step_forward(cell, h.cpu, c.cpu, saved.cpu, xg.cpu, hg.cpu, b_hh.cpu, h_prev.cpu,
                                  c_prev.cpu);
      gpu->recurrent_step_forward(cell, h.gpu, c.gpu, saved.gpu, xg.gpu, hg.gpu, b_hh.gpu, h_prev.gpu,
                                  c_prev.gpu);
      EXPECT_LT(rel_err(h), kElementwise) << what;
      if (cell != RecurrentCell::Rnn) {  // LSTM: c and the gates; GRU: r|z|n|hn, [B, 4H] all written
        EXPECT_LT(rel_err(saved), kElementwise) << what;
      }
      if (cell == RecurrentCell::Lstm) {
        EXPECT_LT(rel_err(c), kElementwise) << what;
      }
      Twin dgx = poisoned({B, G * H}), dgh = poisoned({B, G * H}), dh = rand({B, H}), dc = rand({B, H}),
           dy = rand({B, H});
      cpu->recurrent_step_backward(cell, dgx.cpu, dgh.cpu, dh.cpu, dc.cpu, dy.cpu, saved.cpu, h.cpu,
                                   h_prev.cpu, c.cpu, c_prev.cpu);
      gpu->recurrent_step_backward(cell, dgx.gpu, dgh.gpu, dh.gpu, dc.gpu, dy.gpu, saved.gpu, h.gpu,
                                   h_prev.gpu, c.gpu, c_prev.gpu);
      EXPECT_LT(rel_err(dgx), kElementwise) << what;
      EXPECT_LT(rel_err(dgh), kElementwise) << what;
      EXPECT_LT(rel_err(dh), kElementwise) << what;
      if (cell == RecurrentCell::Lstm) {
        EXPECT_LT(rel_err(dc), kElementwise) << what;
      }
    }
}

TEST_F(GpuTest, AdamWUpdate) {
  for (int64_t n : {1, 1000, 1'000'003}) {
    Twin p = rand({n}), g = rand({n}), m = rand({n}, 0.1f), v = from_host({n}, [&] {
                                                              std::vector<float> x = normal(n, 0.1f);
                                                              for (float& e : x)
                                                                e = e * e;  // a second moment is non-negative
                                                              return x;
                                                            }());
    const AdamWStep st{3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f - 0.9f * 0.9f, 1.0f - 0.95f * 0.95f, 0.7f};
    cpu->adamw_update(p.cpu, g.cpu, m.cpu, v.cpu, st);
    gpu->adamw_update(p.gpu, g.gpu, m.gpu, v.gpu, st);
    EXPECT_LT(rel_err(p), kElementwise) << n;
    EXPECT_LT(rel_err(m), kElementwise) << n;
    EXPECT_LT(rel_err(v), kElementwise) << n;
  }
}

// The allocator reports its peak, and a request that cannot fit fails with a clear message rather
// than a crash.
TEST_F(GpuTest, AllocatorPeakAndOutOfMemoryMessage) {
  const int64_t before = device_peak_bytes(*gpu);
  { Tensor big = gpu->empty({64 << 20}, DType::F32); }  // 256 MiB, then back to the cache
  EXPECT_GE(device_peak_bytes(*gpu), std::max<int64_t>(before, 256 << 20));
  try {
    const Tensor huge = gpu->empty({int64_t{1} << 40}, DType::F32);  // 4 TiB
    FAIL() << "a tensor of " << huge.bytes() << " bytes was allocated";
  } catch (const EnvironmentError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of device memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("train.micro_batch"), std::string::npos) << msg;
  }
  Tensor after = gpu->empty({1024}, DType::F32);  // the device still works
  gpu->fill(after, 1.0f);
  EXPECT_EQ(gpu->to_host<float>(after)[1023], 1.0f);
}

}  // namespace
}  // namespace kervan::gpu_test
