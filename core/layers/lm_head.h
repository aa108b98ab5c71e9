#pragma once
#include "core/parameters.h"
#include "core/tp_group.h"

namespace kervan {

// The tensors of one LM-head pass over N rows.
struct LmHeadTensors {
  Tensor logits;      // [N, Vl]  this rank's vocabulary columns; d(logits) after backward
  Tensor losses;      // [N]
  Tensor ce_max;      // [N]      tensor parallel: the global row max
  Tensor ce_sum_tgt;  // [2, N]   tensor parallel: global sum of exponentials; target logit
};

// Sum of the per-position losses of a forward, and how many positions were predicted.
struct LossSum {
  double sum = 0;
  int64_t count = 0;
};

// Language-model head and its cross-entropy, shared by the families (GPT's and BERT's tied to the
// token embedding, T5's tied with alpha = d_model^-0.5 or its own matrix):
//   logits = alpha h W^T + b,   loss_n = log sum_j exp(z_nj) - z_n,target   (targets < 0: none)
//   dz = dloss (softmax(z) - onehot(target)),  dh = alpha dz W,  dW += alpha dz^T h,  db += sum_n dz
// W [Vp, C] has `vocab` real rows; padding columns are never predicted.
//
// Vocabulary parallel over `tp` (p ranks): this rank holds rows [vocab_begin, vocab_begin + Vp/p)
// of W (and b) and computes only those logit columns. The loss never gathers the logits: with
// m_n the max over the group of the local row maxima, s_n the group's sum of exp(z - m_n), and
// the target logit from the rank that owns it (one all-reduce of [s; target]),
// loss_n = log s_n + m_n - z_n,target. Backward: each rank has its part of dh, summed over the
// group; its shard of dW and db.
class LmHead {
 public:
  LmHead(const Parameter& weight, const Parameter* bias, int64_t vocab, int64_t vocab_begin, float alpha,
         TpGroup* tp);
  // logits [N, Vl] only (inference).
  void logits(Backend& be, Tensor& logits, const Tensor& h) const;
  // Row n of such logits over the whole padded vocabulary, into host `out`. Under tensor
  // parallelism every rank of the group must call it (the shards' columns are all-gathered) and
  // every rank gets the whole row.
  void full_row(Backend& be, const Tensor& logits, int64_t n, float* out) const;
  // Logits, then the loss of the rows whose target (device `targets` [N], the same on the host in
  // `host_targets`) is >= 0.
  LossSum forward(Backend& be, LmHeadTensors& t, const Tensor& h, const Tensor& targets,
                  const int32_t* host_targets) const;
  // After forward: t.logits becomes d(logits) for d(loss_n) = dloss per predicted row; dh is
  // overwritten; dW, db accumulate.
  void backward(Backend& be, Tensor& dh, LmHeadTensors& t, const Tensor& h, const Tensor& targets,
                float dloss) const;

 private:
  int64_t valid_columns(const Tensor& logits) const;
  const Parameter& weight_;
  const Parameter* bias_;
  int64_t vocab_, vocab_begin_;
  float alpha_;
  TpGroup* tp_;
};

}  // namespace kervan
