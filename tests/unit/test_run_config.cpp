#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "launcher/run_config.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

class RunConfigTest : public TempDirTest {
 protected:
  std::string write(const std::string& text) {
    const std::string p = (dir / "c.toml").string();
    std::ofstream(p) << text;
    return p;
  }
  // The UserError message for loading `text` with `sets`, or "" when it loads.
  std::string error_of(const std::string& text, std::vector<std::string> sets = {}) {
    try {
      load_run_config(write(text), sets);
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  }
  static constexpr const char* kGood = R"(
[model]
preset = "gpt2-tiny"
[data]
path = "x.bin"
[train]
steps = 10
micro_batch = 2
seq_len = 64
lr = 1e-3
warmup_steps = 2
[log]
metrics_file = "m.jsonl"
)";
};

TEST_F(RunConfigTest, LoadsPresetAndOverrides) {
  RunConfig c = load_run_config(write(kGood), {"train.steps=20", "model.n_layer=2", "data.path=/a/b.bin"});
  EXPECT_EQ(c.model.n_layer, 2);
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.model.vocab_size, 8192);
  EXPECT_EQ(c.train.steps, 20);
  EXPECT_EQ(c.data.paths, std::vector<std::string>{"/a/b.bin"});
  EXPECT_FLOAT_EQ(c.train.lr, 1e-3f);
  EXPECT_FLOAT_EQ(c.train.min_lr, 1e-4f);  // default lr / 10
  EXPECT_EQ(c.schedule().warmup_steps, 2);
}

TEST_F(RunConfigTest, ShapeKeysWithoutPreset) {
  std::string text = kGood;
  text.replace(text.find("preset = \"gpt2-tiny\""), 20, "n_layer = 1\nn_head = 2\nd_model = 8\nvocab_size = 50");
  RunConfig c = load_run_config(write(text), {});
  EXPECT_EQ(c.model.max_seq_len, 64);  // defaults to train.seq_len
  EXPECT_EQ(c.model.padded_vocab(), 128);
}

TEST_F(RunConfigTest, MistakesNameFileAndKey) {
  auto has = [](const std::string& msg, const std::string& want) {
    return msg.find(want) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "message: '" << msg << "'";
  };
  const std::string file = (dir / "c.toml").string();
  EXPECT_TRUE(has(error_of(std::string(kGood) + "[train2]\nx = 1\n"), file + ": unknown key 'train2.x'"));
  EXPECT_TRUE(has(error_of(kGood, {"train.stepz=3"}), "--set train.stepz: unknown key 'train.stepz'"));
  EXPECT_TRUE(has(error_of(kGood, {"train.steps=\"ten\""}), "--set train.steps: train.steps must be an integer"));
  EXPECT_TRUE(has(error_of(kGood, {"train.lr=fast"}), "train.lr must be a number"));
  EXPECT_TRUE(has(error_of(kGood, {"model.n_head=3"}), file + ": model.n_head (3) does not divide model.d_model (256)"));
  EXPECT_TRUE(has(error_of(kGood, {"model.preset=gpt5"}), "unknown preset 'gpt5'"));
  EXPECT_TRUE(has(error_of(kGood, {"train.seq_len=512"}), "train.seq_len (512) exceeds model.max_seq_len (256)"));
  EXPECT_TRUE(has(error_of(kGood, {"train.steps=0"}), "train.steps must be positive"));
  EXPECT_TRUE(has(error_of(kGood, {"train.schedule=\"linear\""}), "unknown schedule 'linear'"));
  EXPECT_TRUE(has(error_of(kGood, {"nodot=1"}), "expected section.key=value"));
  EXPECT_TRUE(has(error_of("[model\npreset=1"), file + ":1:"));
  EXPECT_TRUE(has(error_of(kGood, {"data.path=\"\""}), "data.path is required"));
  try {
    load_run_config((dir / "nope.toml").string(), {});
    ADD_FAILURE() << "missing file accepted";
  } catch (const UserError& e) {
    EXPECT_TRUE(has(e.what(), "nope.toml: cannot open config file"));
  }
  EXPECT_EQ(error_of(kGood), "");
}

}  // namespace
}  // namespace kervan
