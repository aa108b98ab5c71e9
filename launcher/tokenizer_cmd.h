#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace kervan {

// `kervan tokenizer encode|decode|bench`: GPT-2 BPE from the command line, ids one per line.
// Registers itself on the app; main() asks selected() after parsing and then calls run().
class TokenizerCommand {
 public:
  explicit TokenizerCommand(CLI::App& app);
  TokenizerCommand(const TokenizerCommand&) = delete;
  TokenizerCommand& operator=(const TokenizerCommand&) = delete;

  bool selected() const { return *encode_ || *decode_ || *bench_; }
  int run() const;

 private:
  CLI::App* encode_;
  CLI::App* decode_;
  CLI::App* bench_;
  std::string tokenizer_ = "gpt2";
  std::string input_;
  bool allow_special_ = false;
  int threads_ = 1;
  int reps_ = 3;
};

}  // namespace kervan
