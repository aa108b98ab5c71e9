#pragma once
#include "core/parameters.h"
#include "core/tp_group.h"

namespace kervan {

// Token + learned position embedding:  x[b,t] = wte[token[b,t]] + wpe[t].
// wte has `padded_vocab` rows; rows >= vocab start (and, never being looked up or predicted, stay)
// at zero. The GPT LM head reuses wte (weight tying), so wte is exposed.
//
// Vocabulary parallel over `tp` (p ranks): rank k owns wte rows [k*Vp/p, (k+1)*Vp/p) and looks up
// only the ids in that range (the caller passes local ids, id - vocab_begin(), and -1 for ids
// outside, which give zero rows); the partial embeddings are summed by an all-reduce. wpe is
// replicated and added once (by rank 0, before the sum). Backward is local: each rank adds the
// rows of its own ids to its shard of dwte.
class Embedding {
 public:
  Embedding(ParameterSet& params, int64_t vocab, int64_t padded_vocab, int64_t max_seq_len, int64_t dim,
            float init_std, TpGroup* tp = nullptr);
  void forward(Backend& be, Tensor& x, const Tensor& tokens) const;
  // dwte, dwpe accumulate. backward_positions does only the dwpe part: data parallelism applies
  // the token rows itself (see Model::set_sparse_rows_hook).
  void backward(Backend& be, const Tensor& dx, const Tensor& tokens) const;
  void backward_positions(Backend& be, const Tensor& dx) const;

  Parameter& wte() const { return wte_; }
  // This rank's shard of the padded vocabulary: global rows [vocab_begin, vocab_begin + rows).
  int64_t vocab_begin() const { return vocab_begin_; }

 private:
  TpGroup* tp_;
  int64_t vocab_begin_;
  Parameter& wte_;
  Parameter& wpe_;
  mutable Tensor zero_positions_;  // [max_seq_len, C] zeros: what ranks other than 0 add
};

}  // namespace kervan
