#pragma once
#include "core/parameters.h"

namespace kervan {

// Token + learned position embedding:  x[b,t] = wte[token[b,t]] + wpe[t].
// wte has `padded_vocab` rows; rows >= vocab start (and, never being looked up or predicted, stay)
// at zero. The GPT LM head reuses wte (weight tying), so wte is exposed.
class Embedding {
 public:
  Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len,
            int64_t dim, float init_std);
  void forward(Backend& be, Tensor& x, const Tensor& tokens) const;
  // dwte, dwpe accumulate. backward_positions does only the dwpe part: data parallelism applies
  // the token rows itself (see GPT::set_token_grad_hook).
  void backward(Backend& be, const Tensor& dx, const Tensor& tokens) const;
  void backward_positions(Backend& be, const Tensor& dx) const;

  Parameter& wte() const { return wte_; }

 private:
  Parameter& wte_;
  Parameter& wpe_;
};

}  // namespace kervan
