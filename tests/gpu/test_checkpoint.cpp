// Checkpoints of a model that lives on the GPU. The saver copies device tensors to the host
// (checkpoint/snapshot.cpp) and the reader copies them back (checkpoint/reader.cpp); here both run
// on CUDA tensors: a GPT saved from the GPU, synchronously and in the background, must load back
// into another GPU model bit for bit. Its Hugging Face export, loaded by transformers'
// GPT2LMHeadModel on the same GPU, must give the logits kervan's CUDA model gives (fp32 on both
// sides with TF32 off, different kernels and summation orders: 1e-4 of the largest logit, as
// tests/e2e/hf_logits.py allows on the CPU).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/gpt2_weights.h"
#include "checkpoint/reader.h"
#include "checkpoint/saver.h"
#include "core/model/gpt.h"
#include "gpu_test.h"

namespace kervan::gpu_test {
namespace {

const GPTConfig kConfig{2, 4, 64, 211, 32};  // odd vocabulary: wte has padding rows
constexpr int64_t kB = 3, kT = 32;

class GpuCheckpointTest : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir = std::filesystem::path(::testing::TempDir()) / ("kervan_gpu_ckpt." + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  // A GPT on the GPU whose every parameter holds fresh random values (biases and LayerNorm
  // weights too, so that a mapping that drops or swaps one shows), wte's padding rows zero.
  std::unique_ptr<GPT> random_model() {
    auto model = std::make_unique<GPT>(kConfig, *gpu, kB, kT);
    for (Parameter& p : model->params().all()) {
      std::vector<float> v = normal(p.value.numel(), 0.1f);
      if (p.name == "wte")
        std::fill(v.begin() + kConfig.vocab_size * kConfig.d_model, v.end(), 0.0f);
      gpu->copy_from_host(p.value, v.data());
    }
    return model;
  }

  void save(GPT& model, const std::string& where, int64_t step, bool async) {
    StateDict state;
    model.state(state);
    put_gpt_config(state.values, kConfig);
    CheckpointSaver saver({where, async, {1, 60.0, 3, 0}}, WriterLayout{}, *gpu);
    saver.save(step, state);
    saver.wait();
  }

  std::filesystem::path dir;
};

TEST_F(GpuCheckpointTest, SavedFromTheGpuLoadsBackBitForBit) {
  for (const bool async : {false, true}) {
    SCOPED_TRACE(async ? "async save" : "sync save");
    auto saved = random_model();
    const std::string where = (dir / (async ? "async" : "sync")).string();
    save(*saved, where, 7, async);
    auto loaded = random_model();  // other values everywhere
    StateDict state;
    loaded->state(state);
    CheckpointReader(step_folder(where, 7)).read_tensors(state, *gpu);
    auto& want = saved->params().all();
    auto& got = loaded->params().all();
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(gpu->to_host<float>(got[i].value), gpu->to_host<float>(want[i].value)) << want[i].name;
  }
}

TEST_F(GpuCheckpointTest, HuggingFaceExportGivesKervansLogitsInTransformers) {
  if (std::system("python3 -c 'import torch, transformers' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 has no torch and transformers (the GPU machine's image has both)";
  auto model = random_model();
  const std::string ckpt = (dir / "ckpt").string(), hf = (dir / "hf").string();
  save(*model, ckpt, 1, false);
  write_hf_gpt2(hf, read_checkpoint_weights(CheckpointReader(step_folder(ckpt, 1)), *gpu));

  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(kConfig.vocab_size - 1));
  std::vector<int32_t> tokens(kB * kT);
  for (int32_t& t : tokens) t = token(rng);
  model->forward(tokens.data(), nullptr, kB, kT);
  const std::vector<float> logits = gpu->to_host<float>(model->logits());
  const int64_t V = kConfig.vocab_size, Vp = kConfig.padded_vocab();
  {
    std::ofstream out(dir / "logits.f32", std::ios::binary);
    for (int64_t row = 0; row < kB * kT; ++row)
      out.write(reinterpret_cast<const char*>(logits.data() + row * Vp), V * sizeof(float));
    std::ofstream(dir / "tokens.i32", std::ios::binary)
        .write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
  }
  const char* source = std::getenv("KERVAN_SOURCE_DIR");
  const std::string cmd = "python3 " + std::string(source ? source : KERVAN_SOURCE_DIR_BUILT) +
                          "/tests/gpu/hf_transformers_logits.py " +
                          hf + " " + (dir / "tokens.i32").string() + " " + (dir / "logits.f32").string() + " " +
                          std::to_string(kB) + " " + std::to_string(kT);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace kervan::gpu_test
