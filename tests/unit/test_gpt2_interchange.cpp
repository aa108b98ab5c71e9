// GPT-2 weights in and out of kervan checkpoints (checkpoint/gpt2_weights.h).
//
// The fixtures (tests/fixtures/make_gpt2_interchange.py) hold gpt_tiny.kvfx's PyTorch weights in
// Hugging Face's and llm.c's layouts; imported, they must give PyTorch's logits (1e-5 relative L2,
// as in test_gpt_parity.cpp). Export then import must give back every tensor bit for bit, from a
// checkpoint saved under DP=2 x TP=2 with ZeRO-1. With PyTorch installed, an exported folder
// loaded into bench/torch_gpt.py must give kervan's logits (tests/e2e/hf_logits.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "../common/compare.h"
#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/gpt2_weights.h"
#include "checkpoint/saver.h"
#include "core/cpu/cpu_backend.h"
#include "fixture.h"
#include "simulated_ranks.h"
#include "temp_dir_test.h"

namespace kervan::test {
namespace {

const std::string kFixtures = KERVAN_FIXTURES_DIR;

class Gpt2Interchange : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fx = read_fixture(kFixtures + "/gpt_tiny.kvfx");
    B = fx.at("config").i32[5];
    T = fx.at("config").i32[6];
  }

  // The model of the checkpoint in `ckpt` (any layout), built for the fixture's batch.
  std::unique_ptr<GPT> load_model(const std::string& ckpt) {
    const CheckpointReader reader(resolve_checkpoint_folder(ckpt, "test"));
    auto model = std::make_unique<GPT>(gpt_config_of(reader), *be, B, T);
    StateDict state;
    model->state(state);
    reader.read_tensors(state, *be);
    return model;
  }

  // Relative L2 error of the model's logits on the fixture batch against PyTorch's.
  double logits_error(GPT& model) {
    model.forward(fx.at("inputs").i32.data(), nullptr, B, T);
    const int64_t V = model.config().vocab_size, Vp = model.config().padded_vocab();
    std::vector<float> got;
    const float* logits = model.logits().data<float>();
    for (int64_t row = 0; row < B * T; ++row) got.insert(got.end(), logits + row * Vp, logits + row * Vp + V);
    return rel_l2(got.data(), fx.at("logits").f32.data(), B * T * V);
  }

  std::map<std::string, FixtureEntry> fx;
  int64_t B = 0, T = 0;
  std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(Gpt2Interchange, HuggingFaceFolderImportsWithPyTorchsLogits) {
  write_weights_checkpoint(path("ckpt"), read_hf_gpt2(kFixtures + "/gpt2_tiny_hf"), *be);
  EXPECT_LT(logits_error(*load_model(path("ckpt"))), 1e-5);
}

TEST_F(Gpt2Interchange, LlmcFileImportsWithPyTorchsLogits) {
  write_weights_checkpoint(path("ckpt"), read_llmc_gpt2(kFixtures + "/gpt2_tiny_llmc.bin"), *be);
  EXPECT_LT(logits_error(*load_model(path("ckpt"))), 1e-5);
}

TEST_F(Gpt2Interchange, LlmcBf16FileHoldsTheRoundedWeights) {
  const Gpt2Weights w = read_llmc_gpt2(kFixtures + "/gpt2_tiny_llmc_bf16.bin");
  for (const auto& [name, t] : w.tensors) {
    const std::vector<float>& want = fx.at("param." + name).f32;  // wte: the first V rows
    for (size_t i = 0; i < t.data.size(); ++i) {
      if (i >= want.size()) {
        ASSERT_EQ(t.data[i], 0.0f) << name << ": padding row element " << i;
        continue;
      }
      uint32_t bits;
      std::memcpy(&bits, &want[i], 4);
      bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000u;  // round to nearest even
      float rounded;
      std::memcpy(&rounded, &bits, 4);
      ASSERT_EQ(t.data[i], rounded) << name << " element " << i;
    }
  }
}

TEST_F(Gpt2Interchange, ExportThenImportGivesEveryTensorBack) {
  // A checkpoint written by DP=2 x TP=2 ranks with ZeRO-1, of distinct values everywhere.
  const GPTConfig config{2, 4, 16, 50, 8};
  auto ranks = simulate_layout(*be, config, 2, 2, true);
  for (size_t r = ranks.size(); r-- > 0;) {
    StateDict state = ranks[r]->state();
    fill_known_values(*be, state);
    for (Parameter& p : ranks[r]->model->params().all())  // the padding rows of wte stay zero
      if (p.name == "wte") {
        std::vector<float> v = be->to_host<float>(p.value);
        for (int64_t i = 0; i < p.value.numel(); ++i)
          if (p.sharding.global_index(p.shape, i) >= config.vocab_size * config.d_model) v[i] = 0.0f;
        be->copy_from_host(p.value, v.data());
      }
    put_gpt_config(state.values, config);
    CheckpointSaver({path("trained"), false, {4, 10.0, 3, 0}}, ranks[r]->layout, *be).save(5, state);
  }
  const Gpt2Weights original =
      read_checkpoint_weights(CheckpointReader(step_folder(path("trained"), 5)), *be);

  write_hf_gpt2(path("hf"), original);
  write_weights_checkpoint(path("from_hf"), read_hf_gpt2(path("hf")), *be);
  write_llmc_gpt2(path("model.bin"), original);
  write_weights_checkpoint(path("from_llmc"), read_llmc_gpt2(path("model.bin")), *be);
  for (const std::string back : {"from_hf", "from_llmc"}) {
    const Gpt2Weights w = read_checkpoint_weights(CheckpointReader(step_folder(path(back), 0)), *be);
    ASSERT_EQ(w.tensors.size(), original.tensors.size()) << back;
    for (const auto& [name, t] : original.tensors) {
      ASSERT_EQ(w.tensors.at(name).shape, t.shape) << back << ": " << name;
      EXPECT_EQ(w.tensors.at(name).data, t.data) << back << ": " << name;
    }
  }
}

TEST_F(Gpt2Interchange, ImportRefusesAFolderThatHoldsCheckpoints) {
  const Gpt2Weights w = read_llmc_gpt2(kFixtures + "/gpt2_tiny_llmc.bin");
  write_weights_checkpoint(path("ckpt"), w, *be);
  EXPECT_THROW(write_weights_checkpoint(path("ckpt"), w, *be), UserError);
}

TEST_F(Gpt2Interchange, ExportedFolderGivesKervansLogitsInPyTorch) {
  if (std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "PyTorch is not installed (scripts/install-deps.sh --torch)";
  write_weights_checkpoint(path("ckpt"), read_llmc_gpt2(kFixtures + "/gpt2_tiny_llmc.bin"), *be);
  auto model = load_model(path("ckpt"));
  write_hf_gpt2(path("hf"), read_checkpoint_weights(CheckpointReader(step_folder(path("ckpt"), 0)), *be));
  model->forward(fx.at("inputs").i32.data(), nullptr, B, T);
  const int64_t V = model->config().vocab_size, Vp = model->config().padded_vocab();
  std::ofstream logits(path("logits.f32"), std::ios::binary);
  for (int64_t row = 0; row < B * T; ++row)
    logits.write(reinterpret_cast<const char*>(model->logits().data<float>() + row * Vp), V * sizeof(float));
  logits.close();
  const auto& tokens = fx.at("inputs").i32;
  std::ofstream(path("tokens.i32"), std::ios::binary)
      .write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
  const std::string cmd = "/usr/bin/python3 " + kFixtures + "/../e2e/hf_logits.py " + path("hf") + " " +
                          path("tokens.i32") + " " + path("logits.f32") + " " + std::to_string(B) + " " +
                          std::to_string(T);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(Safetensors, ReadsHalfAndBfloat16) {
  // One F16 tensor [1.0, -2.5, 2^-24 (smallest subnormal)] and one BF16 [3.0].
  const std::string header =
      R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}})";
  const uint64_t n = header.size();
  const uint16_t data[4] = {0x3c00, 0xc100, 0x0001, 0x4040};
  const std::string file = ::testing::TempDir() + "/half.safetensors";
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out.write(reinterpret_cast<const char*>(data), sizeof data);
  out.close();
  const auto t = read_safetensors(file);
  EXPECT_EQ(t.at("a").data, (std::vector<float>{1.0f, -2.5f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(t.at("b").data, (std::vector<float>{3.0f}));
  std::remove(file.c_str());
}

}  // namespace
}  // namespace kervan::test
