#include "core/layers/embedding.h"

namespace kervan {

namespace {
int parts(TpGroup* tp) {
  return tp ? tp->size() : 1;
}
}  // namespace

Embedding::Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len,
                     int64_t dim, float init_std, TpGroup* tp)
    : tp_(tp && tp->size() > 1 ? tp : nullptr),
      vocab_begin_(tp_ ? tp_->rank() * (padded_vocab / tp_->size()) : 0),
      wte_(params.declare("wte", {padded_vocab / parts(tp_), dim}, {Init::Kind::Normal, init_std, vocab},
                          true, tp_ ? Sharding::rows(tp_->size(), tp_->rank()) : Sharding{})),
      wpe_(params.declare("wpe", {max_seq_len, dim}, {Init::Kind::Normal, init_std}, false)) {}

void Embedding::forward(Backend& be, Tensor& x, const Tensor& tokens) const {
  if (!tp_) {
    be.embedding_forward(x, tokens, wte_.value, wpe_.value);
    return;
  }
  if (tp_->rank() != 0 && !zero_positions_.defined()) zero_positions_ = be.zeros(wpe_.shape);
  be.embedding_forward(x, tokens, wte_.value, tp_->rank() == 0 ? wpe_.value : zero_positions_);
  tp_->all_reduce_sum(x);
}

void Embedding::backward(Backend& be, const Tensor& dx, const Tensor& tokens) const {
  be.scatter_add_rows(wte_.grad, dx, tokens, 1.0f);
  backward_positions(be, dx);
}

void Embedding::backward_positions(Backend& be, const Tensor& dx) const { be.position_embedding_backward(wpe_.grad, dx); }

}  // namespace kervan
