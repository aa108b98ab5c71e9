#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"

namespace kervan {

// Shape of a recurrent language model (core/model/recurrent.h). The vocabulary is padded to a
// multiple of 128 as GPT's is.
struct RecurrentConfig {
  RecurrentCell cell = RecurrentCell::Lstm;
  int n_layer = 0;
  int64_t d_model = 0;  // hidden units of every layer, and the embedding width
  int64_t vocab_size = 0;
  bool tied = true;       // the output layer is the token embedding (else a [V, d_model] matrix of its own)
  bool residual = false;  // x_{l+1} = x_l + layer_l(x_l) instead of layer_l(x_l)
  bool carry_state = false;  // carry the final hidden state into the next window of the row's stream

  int64_t padded_vocab() const { return (vocab_size + 127) / 128 * 128; }
  // Parameters the model trains (the padding rows not counted).
  int64_t num_params() const;
  // Throws UserError naming the offending key (as `model.<key>`) when the shape is impossible.
  void validate() const;
};

// "rnn" | "lstm" | "gru" -> the cell; UserError naming model.arch otherwise.
RecurrentCell parse_recurrent_cell(const std::string& arch);
bool is_recurrent_arch(const std::string& arch);

// rnn-tiny, lstm-tiny, gru-tiny: about gpt2-tiny's 5.3M parameters (the tied 8192 x 256 embedding
// and 3.16M in the layers: 24 RNN, 6 LSTM or 8 GRU layers of 256); rnn-small, lstm-small,
// gru-small: about gpt2-small's 124M (50257 x 768 and 85M in 72, 18 or 24 layers of 768).
RecurrentConfig recurrent_preset(const std::string& name);
std::vector<std::string> recurrent_preset_names();

}  // namespace kervan
