#pragma once
#include <vector>

#include "core/parameters.h"
#include "core/tp_group.h"

namespace kervan {

// Token embedding, plus a learned position embedding (GPT, BERT; max_seq_len > 0) and a token-type
// embedding (BERT's segments; type_vocab > 0):
//   x[b,t] = wte[token[b,t]] + wpe[t] + wtt[type[b,t]]
// wte has `padded_vocab` rows; rows >= vocab start (and, never being looked up or predicted, stay)
// at zero. LM heads reuse wte (weight tying), so wte is exposed.
//
// Vocabulary parallel over `tp` (p ranks): rank k owns wte rows [k*Vp/p, (k+1)*Vp/p) and looks up
// only the ids in that range (the caller passes local ids, id - vocab_begin(), and -1 for ids
// outside, which give zero rows); the partial embeddings are summed by an all-reduce. wpe and wtt
// are replicated and added once (by rank 0, before the sum). Backward is local: each rank adds the
// rows of its own ids to its shard of dwte, and (all ranks alike) the replicated tables' gradients.
class Embedding {
 public:
  Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len, int64_t dim,
            float init_std, TpGroup* tp = nullptr, int64_t type_vocab = 0);
  // types: [B, T] token types, given exactly when the embedding has them (type_vocab > 0). The
  // tokens sit at positions [first_position, first_position + T) (generation with a KV cache).
  void forward(Backend& be, Tensor& x, const Tensor& tokens, const Tensor* types = nullptr,
               int64_t first_position = 0) const;
  // dwte, dwpe, dwtt accumulate. backward_positions does all but the dwte part: data parallelism
  // applies the token rows itself (see Model::set_sparse_rows_hook).
  void backward(Backend& be, const Tensor& dx, const Tensor& tokens, const Tensor* types = nullptr) const;
  void backward_positions(Backend& be, const Tensor& dx, const Tensor* types = nullptr) const;

  Parameter& wte() const { return wte_; }
  // Global token ids as this rank's shard looks them up: id - vocab_begin() for ids in the shard,
  // -1 for the others (without tensor parallelism, the ids themselves).
  std::vector<int32_t> local_ids(const int32_t* ids, int64_t n) const;
  // This rank's shard of the padded vocabulary: global rows [vocab_begin, vocab_begin + rows).
  int64_t vocab_begin() const { return vocab_begin_; }

 private:
  bool adds_replicated() const { return !tp_ || tp_->rank() == 0; }
  TpGroup* tp_;
  int64_t vocab_begin_;
  Parameter& wte_;
  Parameter* wpe_;
  Parameter* wtt_;
  mutable Tensor zero_positions_;  // [max_seq_len, C] zeros: what ranks other than 0 add
};

}  // namespace kervan
