#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace kervan {

// `kervan sample --checkpoint DIR --prompt TEXT [--tokens N --temperature T --top-k K --top-p P
// --seed S --tokenizer NAME]`: text from a GPT checkpoint saved under any layout (the tensors are
// read whole into one process), printed to stdout; the speed goes to stderr. The same seed gives
// the same tokens. There is no KV cache yet: each new token runs the model over the whole window
// (up to model.max_seq_len tokens), so the cost per token grows with the text.
class SampleCommand {
 public:
  explicit SampleCommand(CLI::App& app);
  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  CLI::App* cmd_;
  std::string dir_, prompt_ = "\n", tokenizer_;
  int64_t tokens_ = 100, top_k_ = 0, seed_ = 1337;
  float temperature_ = 1.0f, top_p_ = 1.0f;
  bool ids_ = false;
};

}  // namespace kervan
