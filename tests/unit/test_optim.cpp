#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/optim/adamw.h"
#include "core/optim/lr_schedule.h"
#include "parallel/grad_norm.h"

namespace kervan {
namespace {

TEST(LrSchedule, CosineWithWarmup) {
  LrSchedule s{LrSchedule::Kind::Cosine, 1.0f, 0.1f, 4, 14, 0};
  EXPECT_FLOAT_EQ(s.at(0), 0.25f);
  EXPECT_FLOAT_EQ(s.at(3), 1.0f);
  EXPECT_FLOAT_EQ(s.at(4), 1.0f);                                         // progress 0
  EXPECT_NEAR(s.at(9), 0.1f + 0.45f * (1 + std::cos(M_PI * 0.5)), 1e-6);  // halfway: 0.55
  EXPECT_FLOAT_EQ(s.at(14), 0.1f);
  EXPECT_FLOAT_EQ(s.at(100), 0.1f);
}

TEST(LrSchedule, ConstantAndWsd) {
  LrSchedule c{LrSchedule::Kind::Constant, 2.0f, 0.0f, 2, 10, 0};
  EXPECT_FLOAT_EQ(c.at(0), 1.0f);
  EXPECT_FLOAT_EQ(c.at(7), 2.0f);
  LrSchedule w{LrSchedule::Kind::WarmupStableDecay, 1.0f, 0.0f, 2, 10, 4};
  EXPECT_FLOAT_EQ(w.at(1), 1.0f);
  EXPECT_FLOAT_EQ(w.at(5), 1.0f);   // stable until step 6
  EXPECT_FLOAT_EQ(w.at(6), 0.75f);  // decay: 1 - 1/4
  EXPECT_FLOAT_EQ(w.at(9), 0.0f);
}

TEST(Clip, FactorMatchesTorch) {
  EXPECT_FLOAT_EQ(clip_factor(0.5f, 1.0f), 1.0f);
  EXPECT_NEAR(clip_factor(4.0f, 1.0f), 1.0f / (4.0f + 1e-6f), 1e-9);
  EXPECT_FLOAT_EQ(clip_factor(100.0f, 0.0f), 1.0f);  // off
}

// Two AdamW steps on one parameter with weight decay and one without, against the update
// written out by hand in double precision.
TEST(AdamW, MatchesHandComputedSteps) {
  auto be = make_cpu_backend();
  ParameterSet ps;
  ps.declare("w", {2}, {Init::Kind::Ones}, true);
  ps.declare("b", {1}, {Init::Kind::Ones}, false);
  ps.allocate(*be);
  ps.initialize(*be, 0);
  AdamWConfig cfg{0.9f, 0.95f, 1e-8f, 0.1f};
  AdamW opt(ps, *be, cfg);
  const float grads[2][3] = {{0.5f, -2.0f, 1.0f}, {0.25f, 1.0f, -3.0f}};
  double p[3] = {1, 1, 1}, m[3] = {0, 0, 0}, v[3] = {0, 0, 0};
  for (int t = 1; t <= 2; ++t) {
    be->copy_from_host(ps.grads(), grads[t - 1]);
    const double lr = 0.01, scale = 0.5;
    opt.step(static_cast<float>(lr), static_cast<float>(scale));
    for (int i = 0; i < 3; ++i) {
      const double g = grads[t - 1][i] * scale, wd = i < 2 ? 0.1 : 0.0;
      p[i] *= 1 - lr * wd;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.95 * v[i] + 0.05 * g * g;
      const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.95, t);
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-8);
    }
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(ps.values().data<float>()[i], p[i], 1e-6) << "step " << t << " i " << i;
  }
}

TEST(GradNorm, GlobalL2) {
  set_host_threads(2);
  auto be = make_cpu_backend();
  ParameterSet ps;
  ps.declare("a", {1001}, {}, false);
  ps.allocate(*be);
  be->fill(ps.grads(), 0.5f);
  EXPECT_NEAR(global_grad_norm(*be, ps, ps.grads(), 0, nullptr, nullptr), std::sqrt(1001 * 0.25), 1e-9);
}

}  // namespace
}  // namespace kervan
