#include "core/layers/embedding.h"

namespace kervan {

Embedding::Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len,
                     int64_t dim, float init_std)
    : wte_(params.declare("wte", {padded_vocab, dim}, {Init::Kind::Normal, init_std, vocab}, true)),
      wpe_(params.declare("wpe", {max_seq_len, dim}, {Init::Kind::Normal, init_std}, false)) {}

void Embedding::forward(Backend& be, Tensor& x, const Tensor& tokens) const {
  be.embedding_forward(x, tokens, wte_.value, wpe_.value);
}

void Embedding::backward(Backend& be, const Tensor& dx, const Tensor& tokens) const {
  be.scatter_add_rows(wte_.grad, dx, tokens, 1.0f);
  backward_positions(be, dx);
}

void Embedding::backward_positions(Backend& be, const Tensor& dx) const { be.position_embedding_backward(wpe_.grad, dx); }

}  // namespace kervan
