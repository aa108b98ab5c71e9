// The whole GPT-2 model against PyTorch (fixture from tests/fixtures/make_gpt_fixture.py), plus
// whole-model properties that need no reference: finite differences through every layer at once,
// and bit-identical repeat runs.
//
// Tolerances (fp32 on both sides, different summation orders in GEMMs and reductions):
//   loss and logits: 1e-5 relative;  gradients: relative L2 error per tensor <= 1e-4;
//   5 AdamW steps: losses 1e-5 relative, parameters relative L2 <= 1e-4 per tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/model/gpt.h"
#include "core/optim/adamw.h"
#include "core/optim/lr_schedule.h"
#include "fd_check.h"
#include "fixture.h"
#include "parallel/train_step.h"

namespace kervan::test {
namespace {

double rel_l2(const float* a, const float* b, int64_t n, int64_t stride_a = 0, int64_t stride_b = 0,
              int64_t row = 0) {
  double d2 = 0, b2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ia = row ? (i / row) * stride_a + i % row : i;
    const int64_t ib = row ? (i / row) * stride_b + i % row : i;
    d2 += (static_cast<double>(a[ia]) - b[ib]) * (static_cast<double>(a[ia]) - b[ib]);
    b2 += static_cast<double>(b[ib]) * b[ib];
  }
  return std::sqrt(d2 / std::max(b2, 1e-30));
}

class GptParity : public ::testing::Test {
 protected:
  void SetUp() override {
    fx = read_fixture(std::string(KERVAN_FIXTURES_DIR) + "/gpt_tiny.kvfx");
    const auto& c = fx.at("config").i32;
    cfg = GPTConfig{c[0], c[1], c[2], c[3], c[4]};
    B = c[5];
    T = c[6];
    set_host_threads(2);
    model = std::make_unique<GPT>(cfg, *be, B, T);
    model->init_weights(0);
    for (Parameter& p : model->params().all()) {
      const auto& src = fx.at("param." + p.name).f32;
      ASSERT_LE(static_cast<int64_t>(src.size()), p.value.numel()) << p.name;
      std::copy(src.begin(), src.end(), p.value.data<float>());  // wte: the first V rows
    }
  }
  float forward() { return model->forward(fx.at("inputs").i32.data(), fx.at("targets").i32.data(), B, T); }

  std::map<std::string, FixtureEntry> fx;
  GPTConfig cfg;
  int64_t B = 0, T = 0;
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<GPT> model;
};

TEST_F(GptParity, LossAndLogitsMatchTorch) {
  const float loss = forward();
  const float want = fx.at("loss").f32[0];
  EXPECT_NEAR(loss, want, 1e-5 * std::abs(want));
  const int64_t V = cfg.vocab_size, Vp = cfg.padded_vocab();
  EXPECT_LT(rel_l2(model->logits().data<float>(), fx.at("logits").f32.data(), B * T * V, Vp, V, V), 1e-5);
}

TEST_F(GptParity, GradientsMatchTorch) {
  forward();
  model->backward(1.0f);
  for (Parameter& p : model->params().all()) {
    const auto& want = fx.at("grad." + p.name).f32;
    EXPECT_LT(rel_l2(p.grad.data<float>(), want.data(), static_cast<int64_t>(want.size())), 1e-4) << p.name;
  }
  // Padding rows of the tied embedding never receive gradient.
  const Parameter* wte = model->params().find("wte");
  for (int64_t i = cfg.vocab_size * cfg.d_model; i < wte->grad.numel(); ++i)
    ASSERT_EQ(wte->grad.data<float>()[i], 0.0f);
}

TEST_F(GptParity, FiveAdamWStepsWithClippingAndWarmupMatchTorch) {
  const auto& h = fx.at("hparams").f32;  // max_lr, min_lr, beta1, beta2, eps, wd, clip, warmup, total
  LrSchedule sched{LrSchedule::Kind::Cosine,   h[0], h[1], static_cast<int64_t>(h[7]),
                   static_cast<int64_t>(h[8]), 0};
  TrainStep train_step(*model, {h[2], h[3], h[4], h[5]}, {});  // one process: the plain recipe
  const auto& losses = fx.at("train_losses").f32;
  const auto& norms = fx.at("grad_norms").f32;
  for (int s = 0; s < 5; ++s) {
    model->params().zero_grad(*be);
    const float loss = forward();
    EXPECT_NEAR(loss, losses[s], 1e-5 * std::abs(losses[s])) << "step " << s;
    train_step.before_last_backward();
    model->backward(1.0f);
    const float norm = train_step.reduce_gradients();
    EXPECT_NEAR(norm, norms[s], 1e-4 * norms[s]) << "step " << s;
    train_step.step(sched.at(s), clip_factor(norm, h[6]));
  }
  EXPECT_GT(norms[0], h[6]) << "the fixture must exercise clipping";
  for (Parameter& p : model->params().all()) {
    auto want = fx.at("final." + p.name).f32;
    float* got = p.value.data<float>();
    if (p.name.ends_with(".attn.c_attn.bias")) {
      // The key bias adds q.b to a whole row of scores, which softmax ignores: its true gradient is
      // zero and both sides hold rounding noise, which Adam's m / sqrt(v) turns into steps of +-lr.
      // Those entries can only be checked against Adam's bound of one lr per step.
      const int64_t C = cfg.d_model;
      for (int64_t i = C; i < 2 * C; ++i) {
        EXPECT_LE(std::abs(got[i] - want[i]), 5 * h[0] * 1.01f) << p.name << "[" << i << "]";
        want[i] = got[i];
      }
    }
    EXPECT_LT(rel_l2(got, want.data(), static_cast<int64_t>(want.size())), 1e-4) << p.name;
  }
}

// Finite differences through the whole model. The loss is an fp32 mean, so its rounding noise
// (~1e-7 absolute) over h = 1e-2 is ~1e-5 in a difference quotient, and it changes with the
// compiler's code generation (the ASan build sees 2.4e-2 where the release build sees 1e-2). Each
// tensor is checked on its 8 largest-gradient entries to 5e-2 relative L2: enough to catch a
// wiring mistake (those show up as O(1) errors); each layer's own check is in test_layers_fd.cpp.
TEST_F(GptParity, WholeModelFiniteDifferences) {
  forward();
  model->backward(1.0f);
  const float h = 1e-2f;
  for (const char* name :
       {"wte", "wpe", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight",
        "h.1.mlp.c_fc.weight", "h.1.mlp.c_proj.bias", "ln_f.bias"}) {
    Parameter* p = model->params().find(name);
    std::vector<int64_t> idx(p->grad.numel());
    std::iota(idx.begin(), idx.end(), 0);
    const float* g = p->grad.data<float>();
    std::partial_sort(idx.begin(), idx.begin() + 8, idx.end(),
                      [&](int64_t a, int64_t b) { return std::abs(g[a]) > std::abs(g[b]); });
    double d2 = 0, g2 = 0;
    for (int i = 0; i < 8; ++i) {
      float& w = p->value.data<float>()[idx[i]];
      const float keep = w;
      w = keep + h;
      const double up = forward();
      w = keep - h;
      const double down = forward();
      w = keep;
      const double num = (up - down) / (2.0 * h);
      d2 += (num - g[idx[i]]) * (num - g[idx[i]]);
      g2 += static_cast<double>(g[idx[i]]) * g[idx[i]];
    }
    EXPECT_LT(std::sqrt(d2 / g2), 5e-2) << name;
  }
}

TEST_F(GptParity, RepeatRunIsBitIdentical) {
  auto run = [&] {
    model->params().zero_grad(*be);
    const float loss = forward();
    model->backward(1.0f);
    return std::make_pair(loss, to_vector(model->params().grads()));
  };
  const auto a = run(), b = run();
  EXPECT_EQ(a.first, b.first);
  EXPECT_TRUE(a.second == b.second);
}

// Generation's next_token_logits runs the LM head on the last position only: the same row as the
// whole forward's, at three context lengths.
TEST(GptGeneration, NextTokenLogitsEqualTheLastRowOfTheWholeForward) {
  const auto fx = read_fixture(std::string(KERVAN_FIXTURES_DIR) + "/gpt_tiny.kvfx");
  const auto& c = fx.at("config").i32;
  const GPTConfig cfg{c[0], c[1], c[2], c[3], c[4]};
  const int64_t T = c[6];
  auto be = make_cpu_backend();
  set_host_threads(2);
  GPT model(cfg, *be, 1, T);
  model.init_weights(7);
  const int32_t* tokens = fx.at("inputs").i32.data();  // the first sequence
  std::vector<float> whole(cfg.padded_vocab()), last(cfg.padded_vocab());
  for (int64_t t : {int64_t{1}, T / 2, T}) {
    model.forward(Batch{1, t, tokens, nullptr});
    model.logits_row(t - 1, whole.data());
    model.next_token_logits(tokens, t, last.data());
    for (int64_t v = 0; v < cfg.vocab_size; ++v)
      ASSERT_NEAR(last[v], whole[v], 1e-5f) << "T " << t << " v " << v;
  }
}

}  // namespace
}  // namespace kervan::test
