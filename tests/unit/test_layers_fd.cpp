// The GPT layers' backward against central finite differences (see fd_check.h for the
// tolerance); the layers BERT and T5 add are in test_family_layers_fd.cpp.
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "core/backend.h"
#include "core/layers/attention.h"
#include "core/layers/embedding.h"
#include "core/layers/layernorm.h"
#include "core/layers/linear.h"
#include "core/layers/mlp.h"
#include "fd_check.h"
#include "layer_fd_test.h"

namespace kervan::test {
namespace {

TEST_F(LayerFd, Linear) {
  ParameterSet ps;
  Linear lin(ps, "lin", 7, 5, 0.5f);
  ps.allocate(*be);
  ps.initialize(*be, 1);
  fill_normal(ps.find("lin.bias")->value, 9, 0.5f);
  Tensor x = randn({3, 4, 7}, 2), y = randn({3, 4, 5}, 0), w = randn({3, 4, 5}, 3), dx = randn({3, 4, 7}, 0);
  auto loss = [&] {
    lin.forward(*be, y, x);
    return weighted_sum(y, w);
  };
  loss();
  lin.backward(*be, &dx, w, x);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  for (const char* name : {"lin.weight", "lin.bias"}) {
    Parameter* p = ps.find(name);
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
  // The check has teeth: a gradient off by 10% fails it.
  std::vector<float> wrong = to_vector(dx);
  for (float& v : wrong) v *= 1.1f;
  EXPECT_GT(fd_relative_error(x, wrong, loss), kFdTolerance);
}

TEST_F(LayerFd, LayerNorm) {
  ParameterSet ps;
  LayerNorm ln(ps, "ln", 16);
  ps.allocate(*be);
  ps.initialize(*be, 1);
  fill_normal(ps.find("ln.weight")->value, 4);
  fill_normal(ps.find("ln.bias")->value, 5);
  Tensor x = randn({6, 16}, 2, 2.0f), y = randn({6, 16}, 0), w = randn({6, 16}, 3), dx = randn({6, 16}, 0);
  Tensor mean = be->empty({6}, DType::F32), rstd = be->empty({6}, DType::F32);
  auto loss = [&] {
    ln.forward(*be, y, mean, rstd, x);
    return weighted_sum(y, w);
  };
  loss();
  ln.backward(*be, dx, w, x, mean, rstd);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  for (const char* name : {"ln.weight", "ln.bias"}) {
    Parameter* p = ps.find(name);
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
}

class ActivationFd : public LayerFd, public ::testing::WithParamInterface<Activation> {};

TEST_P(ActivationFd, MatchesFiniteDifferences) {
  Tensor x = randn({50}, 2, 2.0f), y = randn({50}, 0), w = randn({50}, 3), dx = randn({50}, 0);
  auto loss = [&] {
    be->activation_forward(y, x, GetParam());
    return weighted_sum(y, w);
  };
  loss();
  be->activation_backward(dx, x, w, GetParam());
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss, 1e-3f), kFdTolerance);
}
INSTANTIATE_TEST_SUITE_P(Kinds, ActivationFd,
                         ::testing::Values(Activation::GeluTanh, Activation::GeluErf, Activation::Relu,
                                           Activation::Tanh));

// Spot values: gelu_tanh(1) = 0.841192, gelu_erf(1) = 0.841345 (the two GELUs differ in the 4th
// digit), relu(-1) = 0, tanh(1) = 0.761594.
TEST_F(LayerFd, ActivationValues) {
  auto at = [&](Activation act, float v) {
    Tensor a = be->empty({1}, DType::F32), b = be->empty({1}, DType::F32);
    be->copy_from_host(a, &v);
    be->activation_forward(b, a, act);
    return be->item<float>(b);
  };
  EXPECT_NEAR(at(Activation::GeluTanh, 1.0f), 0.841192f, 1e-5f);
  EXPECT_NEAR(at(Activation::GeluTanh, -1.0f), -0.158808f, 1e-5f);
  EXPECT_NEAR(at(Activation::GeluErf, 1.0f), 0.841345f, 1e-5f);
  EXPECT_NEAR(at(Activation::GeluErf, -1.0f), -0.158655f, 1e-5f);
  EXPECT_EQ(at(Activation::Relu, -1.0f), 0.0f);
  EXPECT_EQ(at(Activation::Relu, 2.5f), 2.5f);
  EXPECT_NEAR(at(Activation::Tanh, 1.0f), 0.761594f, 1e-5f);
}

// The GELU kernels are built with -ffast-math (vectorised tanhf). Over |x| <= 20, far into both
// tails where tanh saturates and 1 + tanh(u) cancels, the values and the derivative must still
// match a double-precision evaluation of the same formula: to 2e-6 absolute plus 2e-6 relative
// (a few float ulps of the result; fast-math tanhf is within 2 ulps, and the cancellation in
// 1 + tanh(u) costs at most one ulp of 1, about 6e-8, times |x| / 2 <= 10).
TEST_F(LayerFd, GeluMatchesDoublePrecisionFarIntoTheTails) {
  const int64_t n = 8001;
  std::vector<float> xs(n), ones(n, 1.0f), y(n), d(n);
  for (int64_t i = 0; i < n; ++i) xs[i] = -20.0f + 40.0f * static_cast<float>(i) / (n - 1);
  Tensor x = be->empty({n}, DType::F32), out = be->empty({n}, DType::F32);
  Tensor dout = be->empty({n}, DType::F32), dx = be->empty({n}, DType::F32);
  be->copy_from_host(x, xs.data());
  be->copy_from_host(dout, ones.data());
  be->activation_forward(out, x, Activation::GeluTanh);
  be->activation_backward(dx, x, dout, Activation::GeluTanh);
  be->copy_to_host(y.data(), out);
  be->copy_to_host(d.data(), dx);
  const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
  for (int64_t i = 0; i < n; ++i) {
    const double v = xs[i], t = std::tanh(k * (v + c * v * v * v));
    const double want = 0.5 * v * (1 + t);
    const double want_d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * c * v * v);
    ASSERT_TRUE(std::isfinite(y[i]) && std::isfinite(d[i])) << "x = " << v;
    ASSERT_NEAR(y[i], want, 2e-6 + 2e-6 * std::abs(want)) << "gelu(" << v << ")";
    ASSERT_NEAR(d[i], want_d, 2e-6 + 2e-6 * std::abs(want_d)) << "gelu'(" << v << ")";
  }
  // The tails themselves: gelu(20) = 20, gelu(-20) = 0 (to float), slopes 1 and 0.
  EXPECT_EQ(y[n - 1], 20.0f);
  EXPECT_NEAR(y[0], 0.0f, 1e-6f);
  EXPECT_NEAR(d[n - 1], 1.0f, 1e-6f);
  EXPECT_NEAR(d[0], 0.0f, 1e-6f);
}

TEST_F(LayerFd, ResidualAdd) {
  Tensor a = randn({10}, 1), b = randn({10}, 2), y = randn({10}, 0), w = randn({10}, 3);
  auto loss = [&] {
    be->add(y, a, b);
    return weighted_sum(y, w);
  };
  // d(a + b)/da = d/db = identity: the gradient of either input is the output gradient.
  EXPECT_LT(fd_relative_error(a, to_vector(w), loss), kFdTolerance);
  EXPECT_LT(fd_relative_error(b, to_vector(w), loss), kFdTolerance);
}

class AttentionFd : public LayerFd, public ::testing::WithParamInterface<int64_t> {};

// T = 5 fits one block of query rows; T = 70 spans two (the CPU kernel blocks rows by 64).
TEST_P(AttentionFd, CausalCore) {
  const int64_t B = 2, T = GetParam(), C = 8;
  const int NH = 2;
  Tensor qkv = randn({B, T, 3 * C}, 2), out = randn({B, T, C}, 0), w = randn({B, T, C}, 3);
  Tensor probs = randn({B, NH, T, T}, 0), dprobs = randn({B, NH, T, T}, 0), dqkv = randn({B, T, 3 * C}, 0);
  const AttentionSpec spec{NH, 1.0f / std::sqrt(4.0f), /*causal=*/true};
  auto blocks = [&](const Tensor& t) {
    return std::array{ColumnBlock::of(t, 0, C), ColumnBlock::of(t, C, C), ColumnBlock::of(t, 2 * C, C)};
  };
  const auto in = blocks(qkv), grad = blocks(dqkv);
  auto loss = [&] {
    be->attention_forward(out, probs, in[0], in[1], in[2], spec);
    return weighted_sum(out, w);
  };
  loss();
  // Causality: every probability above the diagonal is exactly zero, each row sums to one.
  const float* P = probs.data<float>();
  for (int64_t bh = 0; bh < B * NH; ++bh)
    for (int64_t i = 0; i < T; ++i) {
      double s = 0;
      for (int64_t j = 0; j < T; ++j) {
        if (j > i) {
          EXPECT_EQ(P[(bh * T + i) * T + j], 0.0f);
        }
        s += P[(bh * T + i) * T + j];
      }
      EXPECT_NEAR(s, 1.0, 1e-6);
    }
  be->attention_backward(grad[0], grad[1], grad[2], dprobs, w, out, in[0], in[1], in[2], probs, spec);
  EXPECT_LT(fd_relative_error(qkv, to_vector(dqkv), loss), kFdTolerance);
}
INSTANTIATE_TEST_SUITE_P(SeqLens, AttentionFd, ::testing::Values(5, 70));

TEST_F(LayerFd, SelfAttentionLayer) {
  ParameterSet ps;
  SelfAttention attn(ps, "attn", 8,
                     {.n_head = 2, .causal = true, .q_std = 0.3f, .kv_std = 0.3f, .proj_std = 0.3f});
  ps.allocate(*be);
  ps.initialize(*be, 7);
  const int64_t B = 2, T = 4, C = 8;
  AttentionSaved saved{be->empty({B, T, 3 * C}, DType::F32), be->empty({B, 2, T, T}, DType::F32),
                       be->empty({B, T, C}, DType::F32)};
  AttentionScratch scratch{be->empty({B, T, C}, DType::F32), be->empty({B, T, 3 * C}, DType::F32),
                           be->empty({B, 2, T, T}, DType::F32)};
  Tensor x = randn({B, T, C}, 2), y = randn({B, T, C}, 0), w = randn({B, T, C}, 3), dx = randn({B, T, C}, 0);
  auto loss = [&] {
    attn.forward(*be, y, saved, x);
    return weighted_sum(y, w);
  };
  loss();
  attn.backward(*be, dx, w, x, saved, scratch);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  for (const char* name :
       {"attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias"}) {
    Parameter* p = ps.find(name);
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
}

TEST_F(LayerFd, Mlp) {
  ParameterSet ps;
  Mlp mlp(ps, "mlp", 6, 24, 0.3f, 0.3f);
  ps.allocate(*be);
  ps.initialize(*be, 7);
  MlpSaved saved{be->empty({3, 24}, DType::F32), be->empty({3, 24}, DType::F32)};
  Tensor x = randn({3, 6}, 2), y = randn({3, 6}, 0), w = randn({3, 6}, 3), dx = randn({3, 6}, 0);
  MlpScratch dh{randn({3, 24}, 0), {}};
  auto loss = [&] {
    mlp.forward(*be, y, saved, x);
    return weighted_sum(y, w);
  };
  loss();
  mlp.backward(*be, dx, w, x, saved, dh);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance);
  for (const char* name : {"mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"}) {
    Parameter* p = ps.find(name);
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
}

TEST_F(LayerFd, Embedding) {
  ParameterSet ps;
  Embedding emb(ps, 10, 16, 6, 4, 1.0f);
  ps.allocate(*be);
  ps.initialize(*be, 3);
  Tensor tokens = be->empty({2, 3}, DType::I32);
  const int32_t ids[6] = {1, 9, 1, 4, 4, 4};  // repeats exercise the scatter-add
  be->copy_from_host(tokens, ids);
  Tensor y = randn({2, 3, 4}, 0), w = randn({2, 3, 4}, 3);
  auto loss = [&] {
    emb.forward(*be, y, tokens);
    return weighted_sum(y, w);
  };
  loss();
  emb.backward(*be, w, tokens);
  for (const char* name : {"wte", "wpe"}) {
    Parameter* p = ps.find(name);
    EXPECT_LT(fd_relative_error(p->value, to_vector(p->grad), loss), kFdTolerance) << name;
  }
  // Padding rows (>= vocab 10) start at zero and get no gradient.
  Parameter* wte = ps.find("wte");
  for (int64_t i = 10 * 4; i < 16 * 4; ++i) {
    EXPECT_EQ(wte->value.data<float>()[i], 0.0f);
    EXPECT_EQ(wte->grad.data<float>()[i], 0.0f);
  }
}

TEST_F(LayerFd, CrossEntropy) {
  const int64_t N = 4, V = 7, Vp = 8;
  Tensor logits = randn({N, Vp}, 2, 2.0f), losses = randn({N}, 0), dlogits = randn({N, Vp}, 0);
  Tensor targets = be->empty({N}, DType::I32);
  const int32_t t[N] = {0, 6, 3, 3};
  be->copy_from_host(targets, t);
  auto loss = [&] {
    be->cross_entropy_forward(losses, logits, targets, V);
    double s = 0;
    for (int64_t i = 0; i < N; ++i) s += losses.data<float>()[i];
    return s / N;
  };
  loss();
  be->cross_entropy_backward(dlogits, logits, targets, V, 1.0f / N);
  EXPECT_LT(fd_relative_error(logits, to_vector(dlogits), loss), kFdTolerance);
  for (int64_t n = 0; n < N; ++n) EXPECT_EQ(dlogits.data<float>()[n * Vp + V], 0.0f) << "padding column";
  // Uniform logits give loss log(V) exactly.
  be->fill(logits, 0.0f);
  EXPECT_NEAR(loss(), std::log(7.0), 1e-6);
}

}  // namespace
}  // namespace kervan::test
