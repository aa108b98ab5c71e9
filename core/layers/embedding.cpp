#include "core/layers/embedding.h"

#include "core/error.h"

namespace kervan {

namespace {
int parts(TpGroup* tp) {
  return tp ? tp->size() : 1;
}
}  // namespace

Embedding::Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len,
                     int64_t dim, float init_std, TpGroup* tp, int64_t type_vocab)
    : tp_(tp && tp->size() > 1 ? tp : nullptr),
      vocab_begin_(tp_ ? tp_->rank() * (padded_vocab / tp_->size()) : 0),
      wte_(params.declare("wte", {padded_vocab / parts(tp_), dim}, {Init::Kind::Normal, init_std, vocab},
                          true, tp_ ? Sharding::rows(tp_->size(), tp_->rank()) : Sharding{})),
      wpe_(max_seq_len > 0 ? &params.declare("wpe", {max_seq_len, dim}, {Init::Kind::Normal, init_std}, false)
                           : nullptr),
      wtt_(type_vocab > 0 ? &params.declare("wtt", {type_vocab, dim}, {Init::Kind::Normal, init_std}, false)
                          : nullptr) {}

std::vector<int32_t> Embedding::local_ids(const int32_t* ids, int64_t n) const {
  std::vector<int32_t> local(ids, ids + n);
  if (!tp_) return local;
  const int64_t rows = wte_.shape[0];
  for (int32_t& id : local)
    id = id >= vocab_begin_ && id < vocab_begin_ + rows ? static_cast<int32_t>(id - vocab_begin_) : -1;
  return local;
}

void Embedding::forward(Backend& be, Tensor& x, const Tensor& tokens, const Tensor* types,
                        int64_t first_position) const {
  KERVAN_CHECK(!types == !wtt_, "token types given to an embedding without them, or missing");
  if (wpe_) {
    if (!adds_replicated() && !zero_positions_.defined()) zero_positions_ = be.zeros(wpe_->shape);
    const Tensor& positions = adds_replicated() ? wpe_->value : zero_positions_;
    KERVAN_CHECK(first_position >= 0 && first_position + tokens.dim(-1) <= positions.dim(0),
                 "positions past the position table");
    be.embedding_forward(x, tokens, wte_.value, positions.rows(first_position, positions.dim(0)));
  } else {
    be.gather_rows(x, wte_.value, tokens, false);
  }
  if (wtt_ && adds_replicated()) be.gather_rows(x, wtt_->value, *types, true);
  if (tp_) tp_->all_reduce_sum(x);
}

void Embedding::backward(Backend& be, const Tensor& dx, const Tensor& tokens, const Tensor* types) const {
  be.scatter_add_rows(wte_.grad, dx, tokens, 1.0f);
  backward_positions(be, dx, types);
}

void Embedding::backward_positions(Backend& be, const Tensor& dx, const Tensor* types) const {
  if (wpe_) be.position_embedding_backward(wpe_->grad, dx);
  if (wtt_) be.scatter_add_rows(wtt_->grad, dx, *types, 1.0f);
}

}  // namespace kervan
