#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace kervan {

// `kervan sample --checkpoint DIR --prompt TEXT [--tokens N --temperature T --top-k K --top-p P
// --seed S --tokenizer NAME --no-kv-cache --threads N]`: text from a GPT checkpoint saved under any
// layout, printed to stdout; the speed of the prefill and of the decode steps goes to stderr. The
// same seed gives the same tokens. One process reads the tensors whole; under mpirun the ranks split
// the model (tensor parallel over all of them) and rank 0 prints. Generation goes through the KV
// cache (core/model/generate.h) unless --no-kv-cache.
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
  int64_t threads_ = 0;
  bool ids_ = false, no_kv_cache_ = false;
};

}  // namespace kervan
