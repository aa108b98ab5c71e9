#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "launcher/config_keys.h"
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

TEST_F(RunConfigTest, FamiliesTakeTheirPresetsAndOwnKeys) {
  RunConfig bert = load_run_config(write(kGood), {"model.arch=\"bert\"", "model.preset=\"bert-base\""});
  EXPECT_EQ(bert.arch, "bert");
  EXPECT_EQ(bert.model.n_layer, 12);
  EXPECT_EQ(bert.model.vocab_size, 30522);
  EXPECT_EQ(bert.model.max_seq_len, 512);
  RunConfig t5 = load_run_config(
      write(kGood), {"model.arch=\"t5\"", "model.preset=\"t5-small\"", "model.t5_ffn=\"gated-gelu\""});
  EXPECT_EQ(t5.model.d_model, 512);
  EXPECT_EQ(t5.model.max_seq_len, 64);  // no position table: train.seq_len
  EXPECT_EQ(t5.t5_ffn, "gated-gelu");
  EXPECT_NE(error_of(kGood, {"model.t5_ffn=\"relu\""}).find("model.t5_ffn applies to T5 only"),
            std::string::npos);
  EXPECT_NE(error_of(kGood, {"model.arch=\"bert\""})
                .find("model.preset 'gpt2-tiny' is a gpt preset, but model.arch is \"bert\""),
            std::string::npos);
  EXPECT_NE(error_of(kGood, {"model.arch=\"bert\"", "model.preset=\"bert-tiny\"", "train.seq_len=3"})
                .find("train.seq_len must be >= 4 for bert"),
            std::string::npos);
}

TEST_F(RunConfigTest, ShapeKeysWithoutPreset) {
  std::string text = kGood;
  text.replace(text.find("preset = \"gpt2-tiny\""), 20,
               "n_layer = 1\nn_head = 2\nd_model = 8\nvocab_size = 50");
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
  EXPECT_TRUE(
      has(error_of(kGood, {"train.steps=\"ten\""}), "--set train.steps: train.steps must be an integer"));
  EXPECT_TRUE(has(error_of(kGood, {"train.lr=fast"}), "train.lr must be a number"));
  EXPECT_TRUE(has(error_of(kGood, {"model.n_head=3"}),
                  file + ": model.n_head (3) does not divide model.d_model (256)"));
  EXPECT_TRUE(has(error_of(kGood, {"model.preset=gpt5"}), "unknown preset 'gpt5'"));
  EXPECT_TRUE(
      has(error_of(kGood, {"train.seq_len=512"}), "train.seq_len (512) exceeds model.max_seq_len (256)"));
  EXPECT_TRUE(has(error_of(kGood, {"train.steps=0"}),
                  "--set train.steps: train.steps must be >= 1 and <= 1e+12, got 0"));
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

// Values out of a key's range, and those that overflow the field's type, are refused where they
// are read, naming the key; so are values that only make sense together.
TEST_F(RunConfigTest, RangesAreCheckedWhereValuesAreRead) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train.eps=-1e-8", "train.eps must be > 0, got -1e-08"},
      {"train.eps=0.0", "train.eps must be > 0"},
      {"train.grad_clip=nan", "train.grad_clip must be finite"},
      {"train.grad_clip=-1.0", "train.grad_clip must be >= 0"},
      {"train.beta1=1.0", "train.beta1 must be >= 0 and < 1"},
      {"train.lr=inf", "train.lr must be finite"},
      {"train.threads=2147483648", "train.threads must be >= 0 and <= 1024, got 2147483648"},
      {"train.threads=100000", "train.threads must be >= 0 and <= 1024"},
      {"parallel.tp=4294967298", "parallel.tp must be >= 1 and <= 65536, got 4294967298"},
      {"model.n_layer=4294967297", "model.n_layer must be >= 1 and <= 4096"},
      {"sample.temperature=nan", "sample.temperature must be finite"},
      {"sample.top_k=-1", "sample.top_k must be >= 0"},
      {"data.weights=[1.0, nan]", "data.weights must be finite"},
      {"train.warmup_steps=11", "train.warmup_steps (11) exceeds train.steps (10)"},
      {"train.min_lr=0.01", "train.min_lr (0.010000) exceeds train.lr (0.001000)"},
      {"train.weight_decay=1000.0", "train.lr x train.weight_decay must be < 1"},
  };
  for (const auto& [set, want] : cases) {
    const std::string msg = error_of(kGood, {set});
    EXPECT_NE(msg.find(want), std::string::npos) << set << " -> '" << msg << "'";
  }
}

// The cross-rank hash covers exact values: floats that print alike with six decimals differ.
TEST_F(RunConfigTest, CanonicalFormIsExact) {
  const std::string a = load_run_config(write(kGood), {"train.eps=1e-8"}).canonical();
  EXPECT_NE(a, load_run_config(write(kGood), {"train.eps=1e-9"}).canonical());
  EXPECT_NE(load_run_config(write(kGood), {"train.lr=1e-3"}).canonical(),
            load_run_config(write(kGood), {"train.lr=1.000001e-3"}).canonical());
  EXPECT_EQ(a, load_run_config(write(kGood), {"train.eps=1e-8"}).canonical());
  // Strings are length-prefixed: two paths cannot run into each other.
  EXPECT_NE(load_run_config(write(kGood), {"data.path=[\"a\", \"b,1:c\"]"}).canonical(),
            load_run_config(write(kGood), {"data.path=[\"a,1:b\", \"c\"]"}).canonical());
  // Every key that must agree across ranks is in it; per-rank keys are not.
  for (const ConfigKey& k : config_keys())
    EXPECT_EQ(a.find(std::string(k.key) + "=") != std::string::npos, k.same_on_every_rank) << k.key;
}

// configs/README.md shows exactly the key table (regenerate the block with `kervan config keys`).
TEST(ConfigKeys, ReadmeTableMatchesTheKeyList) {
  std::ifstream in(std::string(KERVAN_SOURCE_DIR) + "/configs/README.md");
  ASSERT_TRUE(in) << "configs/README.md";
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto begin = text.find("| key | type | default | meaning |");
  const auto end = text.find("<!-- end of keys -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(text.substr(begin, end - begin), config_keys_markdown())
      << "configs/README.md and launcher/config_keys.cpp differ: run `build/kervan config keys` and paste "
         "the table";
}

TEST_F(RunConfigTest, CheckpointKeys) {
  const RunConfig d = load_run_config(write(kGood), {});
  EXPECT_TRUE(d.checkpoint.dir.empty());
  EXPECT_TRUE(d.checkpoint.async);
  EXPECT_EQ(d.checkpoint.resume, "auto");
  EXPECT_EQ(d.checkpoint.keep_last, 3);
  const RunConfig c =
      load_run_config(write(kGood), {"checkpoint.dir=ck", "checkpoint.async=false", "checkpoint.strict=true",
                                     "checkpoint.every=5", "checkpoint.keep_every=100",
                                     "checkpoint.on_failure=continue", "checkpoint.resume=none"});
  EXPECT_EQ(c.checkpoint.dir, "ck");
  EXPECT_FALSE(c.checkpoint.async);
  EXPECT_TRUE(c.checkpoint.strict);
  EXPECT_EQ(c.checkpoint.every, 5);
  EXPECT_EQ(c.checkpoint.keep_every, 100);
  EXPECT_EQ(c.checkpoint.on_failure, "continue");
  EXPECT_EQ(c.checkpoint.resume, "none");
  EXPECT_EQ(error_of(kGood, {"checkpoint.async=1"}),
            "--set checkpoint.async: checkpoint.async must be true or false");
  EXPECT_EQ(error_of(kGood, {"checkpoint.keep_last=0"}),
            "--set checkpoint.keep_last: checkpoint.keep_last must be >= 1 and <= 1e+09, got 0");
  EXPECT_EQ(error_of(kGood, {"checkpoint.on_failure=maybe"}),
            "--set checkpoint.on_failure: checkpoint.on_failure must be stop or continue, got 'maybe'");
  EXPECT_NE(exact_value(*find_config_key("checkpoint.async"), c),
            exact_value(*find_config_key("checkpoint.async"), d));
}

TEST_F(RunConfigTest, DeterministicKey) {
  EXPECT_FALSE(load_run_config(write(kGood), {}).train.deterministic);
  EXPECT_TRUE(load_run_config(write(kGood), {"train.deterministic=true"}).train.deterministic);
  EXPECT_EQ(error_of(kGood, {"train.deterministic=\"yes\""}),
            "--set train.deterministic: train.deterministic must be true or false");
}

// Every key is read: a config that sets each one to a valid value loads and reports where it came from.
TEST_F(RunConfigTest, EveryKeyInTheTableIsRead) {
  const RunConfig c = load_run_config(write(kGood), {"train.eval_every=0", "sample.top_k=3"});
  EXPECT_EQ(c.sample.top_k, 3);
  EXPECT_EQ(c.origin.at("sample.top_k"), "--set");
  EXPECT_EQ(c.origin.at("train.steps"), "file");
  EXPECT_EQ(c.origin.count("train.beta1"), 0u);
  for (const ConfigKey& k : config_keys()) EXPECT_NE(find_config_key(k.key), nullptr) << k.key;
}

}  // namespace
}  // namespace kervan
