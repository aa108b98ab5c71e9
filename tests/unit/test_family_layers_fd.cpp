// The layers BERT and T5 add, against central finite differences (tolerance in fd_check.h):
// bidirectional attention with padding and a position bias, cross-attention, RMS norm, T5's
// relative position bias, the gated-GELU and ReLU feed-forwards, BERT's token-type embedding, the
// MLM head and the classification head. Each also checks a property that needs no reference
// (padding keys get probability 0, bucket values, etc.).
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "core/layers/classification_head.h"
#include "core/layers/cross_attention.h"
#include "core/layers/embedding.h"
#include "core/layers/mlm_head.h"
#include "core/layers/mlp.h"
#include "core/layers/relative_position_bias.h"
#include "core/layers/rmsnorm.h"
#include "fd_check.h"
#include "layer_fd_test.h"

namespace kervan::test {
namespace {

void expect_params_fd(ParameterSet& ps, std::initializer_list<const char*> names,
                      const std::function<double()>& loss) {
  for (const char* name : names) {
    Parameter* p = ps.find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
}

// Bidirectional attention (BERT, T5's encoder) over padded sequences, with an additive bias:
// gradients of q|k|v and of the bias, and padding keys never attended.
TEST_F(LayerFd, BidirectionalAttentionWithPaddingAndBias) {
  const int64_t B = 2, T = 6, C = 8;
  const int NH = 2;
  Tensor qkv = randn({B, T, 3 * C}, 2), out = randn({B, T, C}, 0), w = randn({B, T, C}, 3);
  Tensor probs = randn({B, NH, T, T}, 0), dprobs = randn({B, NH, T, T}, 0), dqkv = randn({B, T, 3 * C}, 0);
  Tensor bias = randn({NH, T, T}, 4), dbias = be->zeros({NH, T, T});
  Tensor lengths = ints({B}, {6, 4});
  const AttentionSpec spec{NH, 0.5f, false, &lengths, &bias};
  auto blk = [&](const Tensor& t, int i) { return ColumnBlock::of(t, i * C, C); };
  auto loss = [&] {
    be->attention_forward(out, probs, blk(qkv, 0), blk(qkv, 1), blk(qkv, 2), spec);
    return weighted_sum(out, w);
  };
  loss();
  const float* P = probs.data<float>();
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 4; j < T; ++j) EXPECT_EQ(P[((1 * NH + h) * T + i) * T + j], 0.0f) << "padding key";
  be->attention_backward(blk(dqkv, 0), blk(dqkv, 1), blk(dqkv, 2), dprobs, w, out, blk(qkv, 0), blk(qkv, 1),
                         blk(qkv, 2), probs, spec);
  be->bias_backward(dbias, dprobs.view({B, NH * T * T}));
  EXPECT_LT(fd_relative_error(qkv, to_vector(dqkv), loss), kFdTolerance);
  EXPECT_LT(fd_relative_error(bias, to_vector(dbias), loss), kFdTolerance);
  // The padded sequence's padding keys get no gradient.
  const float* dk = dqkv.data<float>() + T * 3 * C;
  for (int64_t j = 4; j < T; ++j)
    for (int64_t c = C; c < 3 * C; ++c) EXPECT_EQ(dk[j * 3 * C + c], 0.0f);
}

// The causal decoder with a bias (T5): rows longer than one block of 64 queries.
TEST_F(LayerFd, CausalAttentionWithBias) {
  const int64_t B = 1, T = 66, C = 4;
  const int NH = 1;
  Tensor qkv = randn({B, T, 3 * C}, 5), out = randn({B, T, C}, 0), w = randn({B, T, C}, 6);
  Tensor probs = randn({B, NH, T, T}, 0), dprobs = randn({B, NH, T, T}, 0), dqkv = randn({B, T, 3 * C}, 0);
  Tensor bias = randn({NH, T, T}, 7), dbias = be->zeros({NH, T, T});
  const AttentionSpec spec{NH, 1.0f, true, nullptr, &bias};
  auto blk = [&](const Tensor& t, int i) { return ColumnBlock::of(t, i * C, C); };
  auto loss = [&] {
    be->attention_forward(out, probs, blk(qkv, 0), blk(qkv, 1), blk(qkv, 2), spec);
    return weighted_sum(out, w);
  };
  loss();
  be->attention_backward(blk(dqkv, 0), blk(dqkv, 1), blk(dqkv, 2), dprobs, w, out, blk(qkv, 0), blk(qkv, 1),
                         blk(qkv, 2), probs, spec);
  be->bias_backward(dbias, dprobs.view({B, NH * T * T}));
  EXPECT_LT(fd_relative_error(bias, to_vector(dbias), loss), kFdTolerance);
  // Masked entries (j > i) get exactly zero bias gradient.
  const float* db = dbias.data<float>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = i + 1; j < T; ++j) ASSERT_EQ(db[i * T + j], 0.0f);
}

TEST_F(LayerFd, CrossAttention) {
  ParameterSet ps;
  const int64_t B = 2, Tq = 3, Tk = 5, C = 8, NH = 2;
  CrossAttention attn(
      ps, "x", C,
      {.n_head = NH, .bias = false, .scaled = false, .q_std = 0.3f, .kv_std = 0.3f, .proj_std = 0.3f});
  ps.allocate(*be);
  ps.initialize(*be, 3);
  auto f = [&](Shape s) { return be->empty(s, DType::F32); };
  CrossAttentionSaved saved{f({B, Tq, C}), f({B, Tk, 2 * C}), f({B, NH, Tq, Tk}), f({B, Tq, C})};
  CrossAttentionScratch scratch{f({B, Tq, C}), f({B, Tq, C}), f({B, Tk, 2 * C}), f({B, NH, Tq, Tk}),
                                f({B, Tk, C})};
  Tensor x = randn({B, Tq, C}, 1), mem = randn({B, Tk, C}, 2), y = f({B, Tq, C}), w = randn({B, Tq, C}, 4);
  Tensor dx = f({B, Tq, C}), dmem = be->zeros({B, Tk, C});
  Tensor lengths = ints({B}, {5, 2});
  auto loss = [&] {
    attn.forward(*be, y, saved, x, mem, &lengths);
    return weighted_sum(y, w);
  };
  loss();
  attn.backward(*be, dx, dmem, w, x, mem, saved, scratch, &lengths);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  EXPECT_LT(fd_relative_error(mem, to_vector(dmem), loss), kFdTolerance);
  expect_params_fd(ps, {"x.q.weight", "x.kv.weight", "x.o.weight"}, loss);
  // Encoder padding is invisible: changing it changes nothing.
  const double before = loss();
  mem.data<float>()[(1 * Tk + 3) * C] += 5.0f;
  EXPECT_EQ(loss(), before);
}

TEST_F(LayerFd, RmsNorm) {
  ParameterSet ps;
  RmsNorm norm(ps, "n", 16);
  ps.allocate(*be);
  ps.initialize(*be, 1);
  fill_normal(ps.find("n.weight")->value, 4);
  Tensor x = randn({5, 16}, 2, 2.0f), y = randn({5, 16}, 0), w = randn({5, 16}, 3), dx = randn({5, 16}, 0);
  Tensor rstd = be->empty({5}, DType::F32);
  auto loss = [&] {
    norm.forward(*be, y, rstd, x);
    return weighted_sum(y, w);
  };
  loss();
  norm.backward(*be, dx, w, x, rstd);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  expect_params_fd(ps, {"n.weight"}, loss);
  // No mean subtraction: a row of 2s with weight 1 normalises to 1s (rms 2, eps 1e-6).
  Tensor twos = be->empty({1, 16}, DType::F32), out = be->empty({1, 16}, DType::F32),
         r = be->empty({1}, DType::F32);
  be->fill(twos, 2.0f);
  be->fill(ps.find("n.weight")->value, 1.0f);
  norm.forward(*be, out, r, twos);
  EXPECT_NEAR(out.data<float>()[0], 1.0f, 1e-6f);
}

// Buckets as Hugging Face's T5 computes them (32 buckets, max distance 128), worked by hand:
// bidirectional: j - i = 0..7 -> 16 + (0..7) for positive, 0..7 for negative distances; 8 -> 16 +
// 8 + int(log(8/8)/log(16) * 8) = 24; 127 -> 16 + 8 + int(log(15.875)/log(16) * 8) = 31 (the
// last); causal: j - i <= 0 only, 0..15 exact, 16 -> 16 + int(log(1)/log(8) * 16) = 16, and far
// distances saturate at 31.
TEST(RelativePositionBucket, MatchesT5) {
  using R = RelativePositionBias;
  EXPECT_EQ(R::bucket(0, true, 32, 128), 0);
  EXPECT_EQ(R::bucket(-3, true, 32, 128), 3);
  EXPECT_EQ(R::bucket(3, true, 32, 128), 19);
  EXPECT_EQ(R::bucket(-8, true, 32, 128), 8);
  EXPECT_EQ(R::bucket(8, true, 32, 128), 24);
  EXPECT_EQ(R::bucket(127, true, 32, 128), 31);
  EXPECT_EQ(R::bucket(-1000, true, 32, 128), 15);
  EXPECT_EQ(R::bucket(5, false, 32, 128), 0);  // a future key: the causal mask hides it anyway
  EXPECT_EQ(R::bucket(-15, false, 32, 128), 15);
  EXPECT_EQ(R::bucket(-16, false, 32, 128), 16);
  EXPECT_EQ(R::bucket(-1000, false, 32, 128), 31);
}

TEST_F(LayerFd, RelativePositionBias) {
  ParameterSet ps;
  RelativePositionBias rpb(ps, "rel", 3, true, 1.0f, nullptr, 8, 16);
  ps.allocate(*be);
  ps.initialize(*be, 2);
  const int64_t T = 12;
  const std::vector<int32_t> host = rpb.buckets(T, T);
  Tensor buckets = ints({T, T}, host);
  Tensor bias = be->empty({3, T, T}, DType::F32), w = randn({3, T, T}, 5);
  auto loss = [&] {
    rpb.forward(*be, bias, buckets);
    return weighted_sum(bias, w);
  };
  loss();
  rpb.backward(*be, w, buckets);
  expect_params_fd(ps, {"rel"}, loss);
  // bias[h, i, j] = table[bucket(j - i), h]
  const float* table = ps.find("rel")->value.data<float>();
  EXPECT_EQ(bias.data<float>()[(2 * T + 1) * T + 4], table[host[1 * T + 4] * 3 + 2]);
}

class MlpVariantFd : public LayerFd, public ::testing::WithParamInterface<MlpOptions> {};

TEST_P(MlpVariantFd, MatchesFiniteDifferences) {
  const MlpOptions opt = GetParam();
  ParameterSet ps;
  const int64_t N = 3, C = 6, H = 10;
  Mlp mlp(ps, "mlp", C, H, 0.4f, 0.4f, opt);
  ps.allocate(*be);
  ps.initialize(*be, 7);
  const int64_t fc = opt.gated ? 2 * H : H;
  MlpSaved saved{be->empty({N, fc}, DType::F32), be->empty({N, H}, DType::F32)};
  MlpScratch scratch{be->empty({N, H}, DType::F32), be->empty({N, fc}, DType::F32)};
  Tensor x = randn({N, C}, 2), y = randn({N, C}, 0), w = randn({N, C}, 3), dx = randn({N, C}, 0);
  auto loss = [&] {
    mlp.forward(*be, y, saved, x);
    return weighted_sum(y, w);
  };
  loss();
  mlp.backward(*be, dx, w, x, saved, scratch);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss, opt.act == Activation::Relu ? 1e-3f : 1e-2f),
            kFdTolerance);
  expect_params_fd(ps, {"mlp.c_fc.weight", "mlp.c_proj.weight"}, loss);
  EXPECT_EQ(ps.find("mlp.c_fc.bias") != nullptr, opt.bias);
}

INSTANTIATE_TEST_SUITE_P(Variants, MlpVariantFd,
                         ::testing::Values(MlpOptions{Activation::GeluTanh, true, false},   // T5 v1.1
                                           MlpOptions{Activation::Relu, false, false},      // T5 v1.0
                                           MlpOptions{Activation::GeluErf, false, true}));  // BERT

TEST_F(LayerFd, EmbeddingWithTokenTypesAndWithoutPositions) {
  ParameterSet ps;
  Embedding bert(ps, 10, 16, 6, 4, 1.0f, nullptr, 2);
  ps.allocate(*be);
  ps.initialize(*be, 3);
  Tensor tokens = ints({2, 3}, {1, 9, 1, 4, 4, 4}), types = ints({2, 3}, {0, 0, 1, 0, 1, 1});
  Tensor y = randn({2, 3, 4}, 0), w = randn({2, 3, 4}, 3);
  auto loss = [&] {
    bert.forward(*be, y, tokens, &types);
    return weighted_sum(y, w);
  };
  loss();
  bert.backward(*be, w, tokens, &types);
  expect_params_fd(ps, {"wte", "wpe", "wtt"}, loss);

  ParameterSet ps2;  // T5: the shared token table alone
  Embedding t5(ps2, 10, 16, 0, 4, 1.0f);
  ps2.allocate(*be);
  ps2.initialize(*be, 3);
  EXPECT_EQ(ps2.find("wpe"), nullptr);
  t5.forward(*be, y, tokens);
  const float* wte = ps2.find("wte")->value.data<float>();
  EXPECT_EQ(y.data<float>()[1 * 4 + 2], wte[9 * 4 + 2]);  // x[0, 1] = wte[9]
}

TEST_F(LayerFd, MlmHead) {
  ParameterSet ps;
  const int64_t M = 4, C = 6, V = 11, Vp = 16;
  Parameter& wte = ps.declare("wte", {Vp, C}, {Init::Kind::Normal, 0.5f, V}, true);
  MlmHead head(ps, "mlm", C, wte, V, 0, 0.4f);
  ps.allocate(*be);
  ps.initialize(*be, 5);
  fill_normal(ps.find("mlm.bias")->value, 8, 0.1f);
  auto f = [&](Shape s) { return be->empty(s, DType::F32); };
  MlmHeadTensors t{f({M, C}), f({M, C}), f({M, C}), f({M}), f({M}), {f({M, Vp}), f({M}), f({M}), f({2, M})},
                   f({M, C}), f({M, C})};
  const std::vector<int32_t> host = {3, 10, -1, 0};
  Tensor targets = ints({M}, host);
  Tensor h = randn({M, C}, 1), dh = f({M, C});
  auto loss = [&] { return head.forward(*be, t, h, targets, host.data()).sum / 3.0; };
  EXPECT_EQ(head.forward(*be, t, h, targets, host.data()).count, 3);
  head.backward(*be, dh, t, h, targets, 1.0f / 3.0f);
  EXPECT_LT(fd_relative_error(h, to_vector(dh), loss), kFdTolerance);
  // wte's padding rows stay out of it; the bias of padding columns too.
  Tensor wte_real = wte.value.slice_flat(0, {V, C});
  expect_params_fd(ps, {"mlm.dense.weight", "mlm.ln.weight", "mlm.ln.bias"}, loss);
  std::vector<float> dwte = to_vector(wte.grad);
  dwte.resize(V * C);
  EXPECT_LT(fd_relative_error(wte_real, dwte, loss), kFdTolerance);
  Tensor bias_real = ps.find("mlm.bias")->value.slice_flat(0, {V});
  std::vector<float> dbias = to_vector(ps.find("mlm.bias")->grad);
  for (int64_t j = V; j < Vp; ++j) EXPECT_EQ(dbias[j], 0.0f) << "padding column " << j;
  dbias.resize(V);
  EXPECT_LT(fd_relative_error(bias_real, dbias, loss), kFdTolerance);
}

class ClassificationHeadFd : public LayerFd, public ::testing::WithParamInterface<bool> {};

TEST_P(ClassificationHeadFd, MatchesFiniteDifferences) {
  ParameterSet ps;
  const int64_t M = 5, C = 6, K = 3;
  ClassificationHead head(ps, "cls", C, K, /*pooler=*/GetParam(), 0.5f);
  ps.allocate(*be);
  ps.initialize(*be, 4);
  auto f = [&](Shape s) { return be->empty(s, DType::F32); };
  ClassificationTensors t{f({M, C}), f({M, C}), f({M, K}), f({M}), f({M, C})};
  const std::vector<int32_t> host = {0, 2, 1, 1, 0};
  Tensor labels = ints({M}, host);
  Tensor h = randn({M, C}, 1), dh = f({M, C});
  auto loss = [&] { return head.forward(*be, t, h, labels, host.data()).sum / M; };
  loss();
  head.backward(*be, dh, t, h, labels, 1.0f / M);
  EXPECT_LT(fd_relative_error(h, to_vector(dh), loss), kFdTolerance);
  expect_params_fd(ps, {"cls.classifier.weight", "cls.classifier.bias"}, loss);
  if (GetParam()) expect_params_fd(ps, {"cls.pooler.weight", "cls.pooler.bias"}, loss);
}

INSTANTIATE_TEST_SUITE_P(Pooler, ClassificationHeadFd, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Bert" : "Gpt"; });

}  // namespace
}  // namespace kervan::test
