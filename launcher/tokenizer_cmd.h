#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

// `kervan tokenizer encode|decode|bench|train`: GPT-2 BPE from the command line (ids one per
// line), and training a GPT-2 style BPE vocabulary on a corpus.
// Registers itself on the app; main() asks selected() after parsing and then calls run().
class TokenizerCommand {
 public:
  explicit TokenizerCommand(CLI::App& app);
  TokenizerCommand(const TokenizerCommand&) = delete;
  TokenizerCommand& operator=(const TokenizerCommand&) = delete;

  bool selected() const { return *encode_ || *decode_ || *bench_ || *train_; }
  int run() const;

 private:
  CLI::App* encode_;
  CLI::App* decode_;
  CLI::App* bench_;
  CLI::App* train_;
  std::string tokenizer_ = "gpt2";
  std::string input_;
  bool allow_special_ = false;
  int threads_ = 1;
  int reps_ = 3;
  // train
  int64_t vocab_size_ = 0;
  std::string out_;
  std::vector<std::string> inputs_;
  int train_threads_ = 0;  // 0: one per core
  int64_t min_frequency_ = 2;
};

}  // namespace kervan
