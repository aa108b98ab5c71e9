// BERT and T5 against PyTorch (fixtures from tests/fixtures/make_family_fixtures.py: Hugging
// Face's math in bench/torch_bert.py and bench/torch_t5.py), on batches with padding, token types,
// masked positions, relative position buckets in their logarithmic range, and both T5 variants.
//
// Tolerances (fp32 on both sides, different summation orders in GEMMs and reductions):
//   loss: 1e-5 relative;  gradients: relative L2 error per tensor <= 1e-4;  buckets: exact.
#include <gtest/gtest.h>

#include <cmath>

#include "../common/compare.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/model/bert.h"
#include "core/model/t5.h"
#include "fd_check.h"
#include "fixture.h"

namespace kervan::test {
namespace {

using Fixture = std::map<std::string, FixtureEntry>;

// Copies every parameter from the fixture (wte-like tables: the fixture's first rows, the rest of
// the padded vocabulary stays 0).
void load_params(Model& model, const Fixture& fx) {
  for (Parameter& p : model.params().all()) {
    const auto& src = fx.at("param." + p.name).f32;
    ASSERT_LE(static_cast<int64_t>(src.size()), p.value.numel()) << p.name;
    std::copy(src.begin(), src.end(), p.value.data<float>());
  }
}

// Every gradient against the fixture's; the padding rows of vocabulary tables get none.
void expect_gradients(Model& model, const Fixture& fx) {
  for (Parameter& p : model.params().all()) {
    const auto& want = fx.at("grad." + p.name).f32;
    const int64_t n = static_cast<int64_t>(want.size());
    EXPECT_LT(rel_l2(p.grad.data<float>(), want.data(), n), 1e-4) << p.name;
    for (int64_t i = n; i < p.grad.numel(); ++i)
      ASSERT_EQ(p.grad.data<float>()[i], 0.0f) << p.name << " padding";
  }
}

int64_t count_targets(const std::vector<int32_t>& t) {
  return std::count_if(t.begin(), t.end(), [](int32_t v) { return v >= 0; });
}

class BertParity : public ::testing::Test {
 protected:
  void SetUp() override {
    set_host_threads(2);
    fx = read_fixture(std::string(KERVAN_FIXTURES_DIR) + "/bert_tiny.kvfx");
    const auto& c = fx.at("config").i32;  // n_layer, n_head, d_model, vocab, max_seq_len, B, T
    cfg = BertConfig{c[0], c[1], c[2], c[3], c[4]};
    B = c[5];
    T = c[6];
    model = std::make_unique<Bert>(cfg, *be, B, T);
    model->init_weights(0);
    load_params(*model, fx);
  }
  float forward() {
    Batch b{B, T, fx.at("tokens").i32.data(), fx.at("targets").i32.data()};
    b.token_types = fx.at("types").i32.data();
    b.lengths = fx.at("lengths").i32.data();
    return model->forward(b);
  }
  Fixture fx;
  BertConfig cfg;
  int64_t B = 0, T = 0;
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<Bert> model;
};

TEST_F(BertParity, LossMatchesTorch) {
  const float want = fx.at("loss").f32[0];
  EXPECT_NEAR(forward(), want, 1e-5 * std::abs(want));
  EXPECT_EQ(model->predicted_positions(), count_targets(fx.at("targets").i32));
}

TEST_F(BertParity, GradientsMatchTorch) {
  forward();
  model->backward(1.0f);
  expect_gradients(*model, fx);
}

TEST_F(BertParity, PaddingIsInvisible) {
  const float before = forward();
  // Changing a padded position's token (sequence 2 has length 5) changes nothing.
  std::vector<int32_t>& tokens = fx.at("tokens").i32;
  tokens[2 * T + 7] = (tokens[2 * T + 7] + 1) % static_cast<int32_t>(cfg.vocab_size);
  EXPECT_EQ(forward(), before);
}

TEST_F(BertParity, RepeatRunIsBitIdentical) {
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

class T5Parity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    set_host_threads(2);
    fx = read_fixture(std::string(KERVAN_FIXTURES_DIR) + "/" + GetParam() + ".kvfx");
    const auto& c = fx.at("config").i32;  // L, H, D, V, d_ff, d_kv, gated, B, Te, Td
    cfg = T5Config{c[0], c[1], c[2], c[3], c[4], c[5], c[6] ? T5Ffn::GatedGelu : T5Ffn::Relu};
    B = c[7];
    Te = c[8];
    Td = c[9];
    model = std::make_unique<T5>(cfg, *be, B, Te, Td);
    model->init_weights(0);
    load_params(*model, fx);
  }
  float forward() {
    Batch b{B, Te, fx.at("tokens").i32.data(), fx.at("targets").i32.data()};
    b.lengths = fx.at("lengths").i32.data();
    b.T_dec = Td;
    b.decoder_tokens = fx.at("decoder_tokens").i32.data();
    return model->forward(b);
  }
  Fixture fx;
  T5Config cfg;
  int64_t B = 0, Te = 0, Td = 0;
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<T5> model;
};

TEST_P(T5Parity, LossMatchesTorch) {
  const float want = fx.at("loss").f32[0];
  EXPECT_NEAR(forward(), want, 1e-5 * std::abs(want));
  EXPECT_EQ(model->predicted_positions(), count_targets(fx.at("targets").i32));
  EXPECT_EQ(model->params().find("lm_head") == nullptr, cfg.tied_head());
}

TEST_P(T5Parity, GradientsMatchTorch) {
  forward();
  model->backward(1.0f);
  expect_gradients(*model, fx);
}

TEST_P(T5Parity, BucketsMatchHuggingFace) {
  const auto& bi = fx.at("buckets.bidirectional").i32;
  const auto& causal = fx.at("buckets.causal").i32;
  for (int64_t r = -300; r <= 300; ++r) {
    ASSERT_EQ(RelativePositionBias::bucket(r, true, 32, 128), bi[r + 300]) << "bidirectional, j - i = " << r;
    ASSERT_EQ(RelativePositionBias::bucket(r, false, 32, 128), causal[r + 300]) << "causal, j - i = " << r;
  }
}

TEST_P(T5Parity, EncoderPaddingIsInvisible) {
  const float before = forward();
  std::vector<int32_t>& tokens = fx.at("tokens").i32;
  tokens[1 * Te + 15] = (tokens[1 * Te + 15] + 1) % static_cast<int32_t>(cfg.vocab_size);  // length 13
  EXPECT_EQ(forward(), before);
}

INSTANTIATE_TEST_SUITE_P(Variants, T5Parity, ::testing::Values("t5_tiny", "t5_tiny_gated"),
                         [](const auto& info) {
                           return std::string(info.param) == "t5_tiny" ? "ReluTied" : "GatedGeluUntied";
                         });

// The presets have the published models' parameter counts (as Hugging Face counts them for
// BertForMaskedLM, without the pooler, and T5ForConditionalGeneration, the shared embedding once).
TEST(FamilyPresets, ParameterCountsArePublished) {
  EXPECT_EQ(bert_preset("bert-base").num_params(), 109'514'298);
  EXPECT_EQ(bert_preset("bert-large").num_params(), 335'174'458);
  EXPECT_EQ(t5_preset("t5-small").num_params(), 60'506'624);
  EXPECT_EQ(t5_preset("t5-base").num_params(), 222'903'552);
}

}  // namespace
}  // namespace kervan::test
