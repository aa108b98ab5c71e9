#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

// Shape of a GPT-2 model. The vocabulary is padded to a multiple of 128 for GEMM speed; padded
// rows of the embedding stay zero and padded logits are never predicted.
struct GPTConfig {
  int n_layer = 0;
  int n_head = 0;
  int64_t d_model = 0;
  int64_t vocab_size = 0;
  int64_t max_seq_len = 0;

  int64_t padded_vocab() const { return (vocab_size + 127) / 128 * 128; }
  int64_t head_dim() const { return d_model / n_head; }
  // Parameters the model trains (the padding rows of wte not counted).
  int64_t num_params() const;
  // Throws UserError naming the offending key (as `model.<key>`) when the shape is impossible.
  void validate() const;
};

// gpt2-tiny (tests and demos), gpt2-small (124M), gpt2-medium (350M), gpt2-large (774M),
// gpt2-xl (1.5B). Throws UserError listing the known names for an unknown one.
GPTConfig gpt_preset(const std::string& name);
std::vector<std::string> gpt_preset_names();

}  // namespace kervan
