// Recurrent layers and models (core/layers/recurrent.h, core/model/recurrent.h):
//  - each cell (RNN tanh, LSTM, GRU) against central finite differences: input, initial states
//    and the four parameters, through several time steps;
//  - each cell against PyTorch's nn.RNN / nn.LSTM / nn.GRU (tests/fixtures/recurrent.kvfx, made
//    by make_recurrent_fixtures.py): outputs, final states, the loss and every gradient (x, h0, c0,
//    weights, biases);
//  - whole models against bench/torch_recurrent.py: loss and every parameter gradient (tied and
//    untied heads, residual or not, ignored targets);
//  - carried state: two consecutive windows with the state carried give the same outputs as one
//    window of twice the length; a reset starts from zeros; validation leaves the state alone;
//  - parallel.tp > 1 is refused.
// Tolerances (fp32 on both sides, different summation orders): values and loss 1e-5 relative,
// gradients 1e-4 relative L2 per tensor; finite differences as fd_check.h.
#include <gtest/gtest.h>

#include <cmath>

#include "../common/compare.h"
#include "core/error.h"
#include "core/layers/recurrent.h"
#include "core/model/recurrent.h"
#include "fd_check.h"
#include "fixture.h"
#include "layer_fd_test.h"

namespace kervan::test {
namespace {

using Fixture = std::map<std::string, FixtureEntry>;

const Fixture& fixture() {
  static const Fixture fx = read_fixture(std::string(KERVAN_FIXTURES_DIR) + "/recurrent.kvfx");
  return fx;
}

// One layer with its activations for T steps of B rows.
struct LayerRun {
  LayerRun(Backend& be, RecurrentCell cell, int64_t T, int64_t B, int64_t I, int64_t H)
      : layer(params, "l", cell, I, H) {
    params.allocate(be);
    const int64_t GH = recurrent_gates(cell) * H;
    s.xg = be.zeros({T, B, GH});
    s.hs = be.zeros({T + 1, B, H});
    s.cs = be.zeros({T + 1, B, H});
    s.gates = be.zeros({T, B, 4 * H});
    sc.hg = be.zeros({B, GH});
    sc.dgx = be.zeros({T, B, GH});
    sc.dgh = be.zeros({T, B, GH});
    sc.dh = be.zeros({B, H});
    sc.dc = be.zeros({B, H});
    sc.tmp = be.zeros({B, H});
  }
  Tensor h0() const { return s.hs.rows(0, 1).view({s.hs.dim(1), s.hs.dim(2)}); }
  Tensor c0() const { return s.cs.rows(0, 1).view({s.cs.dim(1), s.cs.dim(2)}); }
  Tensor y() const { return s.hs.rows(1, s.hs.dim(0)); }
  Tensor hn() const {
    const int64_t T = s.hs.dim(0) - 1;
    return s.hs.rows(T, T + 1).view({s.hs.dim(1), s.hs.dim(2)});
  }
  Tensor cn() const {
    const int64_t T = s.cs.dim(0) - 1;
    return s.cs.rows(T, T + 1).view({s.cs.dim(1), s.cs.dim(2)});
  }
  ParameterSet params;
  RecurrentLayer layer;
  RecurrentSaved s;
  RecurrentScratch sc;
};

const RecurrentCell kCells[] = {RecurrentCell::Rnn, RecurrentCell::Lstm, RecurrentCell::Gru};

class RecurrentFd : public LayerFd, public ::testing::WithParamInterface<RecurrentCell> {};

// loss = sum(y * w) + sum(h_T * wh) (+ sum(c_T * wc)): gradients of x, h0, c0 and every parameter.
TEST_P(RecurrentFd, CellMatchesFiniteDifferences) {
  const RecurrentCell cell = GetParam();
  const bool lstm = cell == RecurrentCell::Lstm;
  const int64_t T = 4, B = 2, I = 3, H = 5;
  LayerRun r(*be, cell, T, B, I, H);
  r.params.initialize(*be, 7);
  for (Parameter& p : r.params.all()) fill_normal(p.value, 11 + p.offset, 0.6f);
  Tensor x = randn({T, B, I}, 1), w = randn({T, B, H}, 2), wh = randn({B, H}, 3), wc = randn({B, H}, 4);
  Tensor h0 = randn({B, H}, 5), c0 = randn({B, H}, 6);
  auto loss = [&] {
    Tensor rh = r.h0(), rc = r.c0();
    be->copy(rh, h0);
    be->copy(rc, c0);
    r.layer.forward(*be, r.s, r.sc, x);
    double l = weighted_sum(r.y(), w) + weighted_sum(r.hn(), wh);
    if (lstm) l += weighted_sum(r.cn(), wc);
    return l;
  };
  loss();
  r.params.zero_grad(*be);
  be->copy(r.sc.dh, wh);
  be->copy(r.sc.dc, wc);
  Tensor dx = be->zeros({T, B, I});
  r.layer.backward(*be, &dx, w, x, r.s, r.sc);
  const std::vector<float> dh0 = to_vector(r.sc.dh), dc0 = to_vector(r.sc.dc);
  EXPECT_LT(fd_relative_error(x, to_vector(dx), loss), kFdTolerance) << "x";
  EXPECT_LT(fd_relative_error(h0, dh0, loss), kFdTolerance) << "h0";
  if (lstm) {
    EXPECT_LT(fd_relative_error(c0, dc0, loss), kFdTolerance) << "c0";
  }
  for (Parameter& p : r.params.all())
    EXPECT_LT(fd_relative_error(p.value, to_vector(p.grad), loss), kFdTolerance) << p.name;
  // The check can fail: a gradient off by 10% is caught.
  std::vector<float> wrong = to_vector(dx);
  for (float& v : wrong) v *= 1.1f;
  EXPECT_GT(fd_relative_error(x, wrong, loss), kFdTolerance);
}

INSTANTIATE_TEST_SUITE_P(Cells, RecurrentFd, ::testing::ValuesIn(kCells),
                         [](const auto& info) { return std::string(recurrent_cell_name(info.param)); });

class RecurrentParity : public LayerFd, public ::testing::WithParamInterface<RecurrentCell> {
 protected:
  const FixtureEntry& at(const std::string& name) const {
    return fixture().at("cell." + std::string(recurrent_cell_name(GetParam())) + "." + name);
  }
  Tensor load(const std::string& name) {
    const FixtureEntry& e = at(name);
    Tensor t = be->empty(e.dims, DType::F32);
    be->copy_from_host(t, e.f32.data());
    return t;
  }
  void expect_close(const Tensor& got, const std::string& name, double tol) {
    const FixtureEntry& e = at(name);
    ASSERT_EQ(got.numel(), static_cast<int64_t>(e.f32.size())) << name;
    EXPECT_LT(rel_l2(got.data<float>(), e.f32.data(), got.numel()), tol) << name;
  }
};

// Outputs, final states, loss and every gradient against PyTorch (PyTorch's gate order and two
// biases, loaded as they are).
TEST_P(RecurrentParity, CellMatchesTorch) {
  const RecurrentCell cell = GetParam();
  const bool lstm = cell == RecurrentCell::Lstm;
  const auto& xd = at("x").dims;
  const int64_t T = xd[0], B = xd[1], I = xd[2], H = at("h0").dims[1];
  LayerRun r(*be, cell, T, B, I, H);
  for (Parameter& p : r.params.all()) {
    const std::string n = p.name.substr(2);  // "l.weight_ih" -> "weight_ih"
    ASSERT_EQ(p.value.numel(), static_cast<int64_t>(at("param." + n).f32.size())) << n;
    be->copy_from_host(p.value, at("param." + n).f32.data());
  }
  r.params.zero_grad(*be);
  Tensor x = load("x"), w = load("w_out");
  Tensor h0 = r.h0(), c0 = r.c0();
  be->copy_from_host(h0, at("h0").f32.data());
  if (lstm) be->copy_from_host(c0, at("c0").f32.data());
  r.layer.forward(*be, r.s, r.sc, x);
  expect_close(r.y(), "y", 1e-5);
  expect_close(r.hn(), "hn", 1e-5);
  double loss = weighted_sum(r.y(), w) + weighted_sum(r.hn(), load("w_h"));
  if (lstm) {
    expect_close(r.cn(), "cn", 1e-5);
    loss += weighted_sum(r.cn(), load("w_c"));
  }
  EXPECT_NEAR(loss, at("loss").f32[0], 1e-5 * std::abs(at("loss").f32[0]));
  be->copy_from_host(r.sc.dh, at("w_h").f32.data());
  if (lstm) be->copy_from_host(r.sc.dc, at("w_c").f32.data());
  Tensor dx = be->zeros({T, B, I});
  r.layer.backward(*be, &dx, w, x, r.s, r.sc);
  expect_close(dx, "dx", 1e-4);
  expect_close(r.sc.dh, "dh0", 1e-4);
  if (lstm) expect_close(r.sc.dc, "dc0", 1e-4);
  for (Parameter& p : r.params.all()) expect_close(p.grad, "grad." + p.name.substr(2), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Cells, RecurrentParity, ::testing::ValuesIn(kCells),
                         [](const auto& info) { return std::string(recurrent_cell_name(info.param)); });

// Whole models: embedding, two layers, tied or untied head, residual or not; loss and every
// gradient against bench/torch_recurrent.py.
TEST_P(RecurrentParity, ModelMatchesTorch) {
  const RecurrentCell cell = GetParam();
  const std::string p = "model." + std::string(recurrent_cell_name(cell)) + ".";
  const Fixture& fx = fixture();
  const auto& c = fx.at(p + "config").i32;  // L, C, V, B, T, tied, residual
  RecurrentConfig cfg{cell, c[0], c[1], c[2], c[5] == 1, c[6] == 1, false};
  const int64_t B = c[3], T = c[4];
  RecurrentLM model(cfg, *be, B, T);
  model.init_weights(1);
  for (Parameter& q : model.params().all()) {
    const auto& src = fx.at(p + "param." + q.name).f32;
    ASSERT_LE(static_cast<int64_t>(src.size()), q.value.numel()) << q.name;
    std::copy(src.begin(), src.end(), q.value.data<float>());
  }
  const float want = fx.at(p + "loss").f32[0];
  const float loss = model.forward(fx.at(p + "tokens").i32.data(), fx.at(p + "targets").i32.data(), B, T);
  EXPECT_NEAR(loss, want, 1e-5 * std::abs(want));
  EXPECT_EQ(model.predicted_positions(), B * T - 4);
  model.backward(1.0f);
  for (Parameter& q : model.params().all()) {
    const auto& g = fx.at(p + "grad." + q.name).f32;
    const int64_t n = static_cast<int64_t>(g.size());
    EXPECT_LT(rel_l2(q.grad.data<float>(), g.data(), n), 1e-4) << q.name;
    for (int64_t i = n; i < q.grad.numel(); ++i)
      ASSERT_EQ(q.grad.data<float>()[i], 0.0f) << q.name << " padding";
  }
  EXPECT_EQ(model.num_params(), [&] {
    int64_t sum = 0;
    for (Parameter& q : model.params().all())
      sum += static_cast<int64_t>(fx.at(p + "param." + q.name).f32.size());
    return sum;
  }());
}

// Two consecutive windows with the state carried give the outputs (here: the loss of each
// position, through the logits) of one window of twice the length.
TEST_P(RecurrentParity, CarriedStateEqualsOneLongWindow) {
  const RecurrentCell cell = GetParam();
  const int64_t B = 2, T = 6, C = 8, V = 40;
  RecurrentConfig cfg{cell, 2, C, V, true, false, true};
  RecurrentLM longer(cfg, *be, B, 2 * T), halves(cfg, *be, B, T);
  longer.init_weights(3);
  halves.init_weights(3);
  // Weights large enough that the first half's state matters to the second half's loss.
  for (RecurrentLM* m : {&longer, &halves})
    for (Parameter& p : m->params().all()) fill_normal(p.value, 21 + p.offset, 0.5f);
  std::vector<int32_t> tokens(B * 2 * T), targets(B * 2 * T);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>((i * 7 + 3) % V);
    targets[i] = static_cast<int32_t>((i * 5 + 1) % V);
  }
  // Per-position losses of the long window: the mean over its second half is what the second
  // carried window must give.
  auto half_of = [&](const std::vector<int32_t>& v, int h) {
    std::vector<int32_t> out(B * T);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) out[b * T + t] = v[b * 2 * T + h * T + t];
    return out;
  };
  std::vector<int32_t> second_only = targets;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) second_only[b * 2 * T + t] = -1;
  const float want = longer.forward(tokens.data(), second_only.data(), B, 2 * T);
  std::vector<int32_t> tok0 = half_of(tokens, 0), tok1 = half_of(tokens, 1), tgt0 = half_of(targets, 0),
                       tgt1 = half_of(targets, 1);
  Batch first{B, T, tok0.data(), tgt0.data()};
  first.carry_state = true;
  first.reset_state = true;
  halves.forward(first);
  // Validation in between (no carry) must not disturb the carried state.
  halves.forward(tok1.data(), tgt1.data(), B, T);
  Batch second{B, T, tok1.data(), tgt1.data()};
  second.carry_state = true;
  const float got = halves.forward(second);
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want));
  // Without the carried state the second window is a different computation.
  const float fresh = halves.forward(tok1.data(), tgt1.data(), B, T);
  EXPECT_GT(std::abs(fresh - want), 1e-4);
  // A reset starts from zeros again.
  second.reset_state = true;
  EXPECT_EQ(halves.forward(second), fresh);
}

TEST(RecurrentModel, TensorParallelIsRefused) {
  struct TwoRanks final : TpGroup {
    int rank() const override { return 0; }
    int size() const override { return 2; }
    void all_reduce_sum(Tensor&) override {}
    void all_reduce_max(Tensor&) override {}
    void all_reduce_avg(Tensor&) override {}
    void all_gather(Tensor&, const Tensor&) override {}
  } tp;
  auto be = make_cpu_backend();
  try {
    RecurrentLM model(RecurrentConfig{RecurrentCell::Lstm, 1, 8, 40}, *be, 1, 4, &tp);
    FAIL() << "tp = 2 accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tp = 2"), std::string::npos) << e.what();
  }
}

TEST(RecurrentModel, PresetsHaveAboutGptParameterCounts) {
  EXPECT_EQ(recurrent_preset("lstm-tiny").num_params(), 5255168);
  EXPECT_EQ(recurrent_preset("gru-tiny").num_params(), 5255168);
  EXPECT_EQ(recurrent_preset("rnn-tiny").num_params(), 5255168);
  for (const char* n : {"rnn-small", "lstm-small", "gru-small"}) {
    const double p = static_cast<double>(recurrent_preset(n).num_params());
    EXPECT_NEAR(p / 124439808.0, 1.0, 0.02) << n;  // gpt2-small: 124,439,808
  }
  // At equal width a GRU layer has 3/4 of an LSTM layer's parameters.
  EXPECT_EQ(RecurrentLayer::num_params(RecurrentCell::Gru, 256, 256) * 4,
            RecurrentLayer::num_params(RecurrentCell::Lstm, 256, 256) * 3);
}

}  // namespace
}  // namespace kervan::test
