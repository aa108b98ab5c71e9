#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

// Shape of a BERT encoder (Devlin et al. 2019; the small ones are Turc et al. 2019's "well-read
// students"). The feed-forward width is 4 d_model, as in every published BERT. The vocabulary is
// padded to a multiple of 128 like GPT's.
struct BertConfig {
  int n_layer = 0;
  int n_head = 0;
  int64_t d_model = 0;
  int64_t vocab_size = 0;
  int64_t max_seq_len = 512;  // rows of the position table
  int64_t type_vocab = 2;     // token types (segments A and B)

  int64_t padded_vocab() const { return (vocab_size + 127) / 128 * 128; }
  int64_t d_ff() const { return 4 * d_model; }
  // Parameters of the encoder and the MLM head (the padding rows of wte not counted).
  int64_t num_params() const;
  // Throws UserError naming the offending key (as `model.<key>`) when the shape is impossible.
  void validate() const;
};

// bert-tiny (2 layers, d 128, 2 heads), bert-mini (4, 256, 4), bert-base (12, 768, 12), bert-large
// (24, 1024, 16); vocabulary 30522 (BERT's uncased WordPiece), 512 positions. UserError for an
// unknown name, listing the known ones.
BertConfig bert_preset(const std::string& name);
std::vector<std::string> bert_preset_names();

}  // namespace kervan
