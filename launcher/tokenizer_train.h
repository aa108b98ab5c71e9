#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

struct TokenizerTrainOptions {
  std::vector<std::string> inputs;  // text files
  std::string out;                  // folder for encoder.json + vocab.bpe
  int64_t vocab_size = 0;           // bytes + merges + <|endoftext|>
  int threads = 0;                  // 0: one per core
  int64_t min_frequency = 2;        // a pair seen fewer times is never merged (>= 1)
};

// `kervan tokenizer train`: counts the pieces of the inputs, learns BPE merges (bpe_trainer.h) and
// writes a GPT-2 style vocabulary (gpt2_vocab_writer.h). Bad options and unreadable or empty
// inputs are a UserError before any work is done.
int run_tokenizer_train(const TokenizerTrainOptions& opts);

}  // namespace kervan
