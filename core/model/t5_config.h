#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

// T5's feed-forward, and with it the version of the model: v1.0 (Raffel et al. 2020) has a ReLU
// feed-forward and its LM head tied to the shared embedding (the decoder output scaled by
// d_model^-0.5 first); v1.1 has the gated GELU feed-forward, act(x W_0^T) * (x W_1^T) with tanh
// GELU, and an LM head of its own.
enum class T5Ffn { Relu, GatedGelu };
T5Ffn parse_t5_ffn(const std::string& name);  // "relu" | "gated-gelu"; UserError naming model.t5_ffn
std::string t5_ffn_name(T5Ffn ffn);

// Shape of a T5 encoder-decoder: n_layer blocks in each stack, n_head heads of d_kv each
// (heads * d_kv may differ from d_model, as in T5 v1.1 small), feed-forward width d_ff,
// relative position buckets (32, up to distance 128). The vocabulary is padded to a multiple of
// 128 like GPT's. No position table: sequence lengths are limited only by memory.
struct T5Config {
  int n_layer = 0;
  int n_head = 0;
  int64_t d_model = 0;
  int64_t vocab_size = 0;
  int64_t d_ff = 0;
  int64_t d_kv = 0;  // 0: d_model / n_head
  T5Ffn ffn = T5Ffn::Relu;
  int num_buckets = 32;
  int max_distance = 128;

  int64_t padded_vocab() const { return (vocab_size + 127) / 128 * 128; }
  int64_t head_dim() const { return d_kv > 0 ? d_kv : d_model / n_head; }
  bool tied_head() const { return ffn == T5Ffn::Relu; }
  int64_t num_params() const;
  // Throws UserError naming the offending key (as `model.<key>`) when the shape is impossible.
  void validate() const;
};

// t5-tiny (4 + 4 layers, d 256, 4 heads, d_ff 1024: Google's t5-efficient-tiny), t5-small (6 + 6,
// 512, 8, 2048), t5-base (12 + 12, 768, 12, 3072); vocabulary 32128, the v1.0 ReLU feed-forward
// (model.t5_ffn switches to v1.1's gated GELU). UserError for an unknown name.
T5Config t5_preset(const std::string& name);
std::vector<std::string> t5_preset_names();

}  // namespace kervan
