#pragma once
#include <memory>

#include "core/layers/linear.h"
#include "core/layers/lm_head.h"

namespace kervan {

// The tensors of one classification pass over M rows (one per sequence).
struct ClassificationTensors {
  Tensor pre, pooled;  // [M, C]  pooler only
  Tensor logits;       // [M, K]  d(logits) after backward
  Tensor losses;       // [M]
  Tensor dpooled;      // [M, C]  backward scratch, pooler only
};

// A sequence classifier on one position's hidden state per sequence (BERT's [CLS], GPT's last
// token), K classes:
//   with the pooler (BERT):  p = tanh(h W_p^T + b_p),  logits = p W_c^T + b_c
//   without (GPT):           logits = h W_c^T + b_c
//   loss = cross-entropy(logits, label)
// Small and replicated under tensor parallelism (every rank computes it from the same rows).
class ClassificationHead {
 public:
  ClassificationHead(ParameterSet& params, const std::string& name, int64_t dim, int64_t num_classes,
                     bool pooler, float init_std);
  LossSum forward(Backend& be, ClassificationTensors& t, const Tensor& h, const Tensor& labels,
                  const int32_t* host_labels) const;
  // dh is overwritten; the head's parameters accumulate.
  void backward(Backend& be, Tensor& dh, ClassificationTensors& t, const Tensor& h, const Tensor& labels,
                float dloss) const;
  int64_t num_classes() const { return num_classes_; }

 private:
  int64_t num_classes_;
  std::unique_ptr<Linear> pooler_;
  Linear classifier_;
};

}  // namespace kervan
