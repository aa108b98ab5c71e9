#include "core/layers/classification_head.h"

#include <vector>

namespace kervan {

ClassificationHead::ClassificationHead(ParameterSet& params, const std::string& name, int64_t dim,
                                       int64_t num_classes, bool pooler, float init_std)
    : num_classes_(num_classes),
      pooler_(pooler ? std::make_unique<Linear>(params, name + ".pooler", dim, dim, init_std) : nullptr),
      classifier_(params, name + ".classifier", dim, num_classes, init_std) {}

LossSum ClassificationHead::forward(Backend& be, ClassificationTensors& t, const Tensor& h,
                                    const Tensor& labels, const int32_t* host_labels) const {
  if (pooler_) {
    pooler_->forward(be, t.pre, h);
    be.activation_forward(t.pooled, t.pre, Activation::Tanh);
  }
  classifier_.forward(be, t.logits, pooler_ ? t.pooled : h);
  be.cross_entropy_forward(t.losses, t.logits, labels, num_classes_);
  const std::vector<float> losses = be.to_host<float>(t.losses);
  LossSum out;
  for (int64_t m = 0; m < t.logits.dim(0); ++m) {
    out.sum += losses[m];
    out.count += host_labels[m] >= 0;
  }
  return out;
}

void ClassificationHead::backward(Backend& be, Tensor& dh, ClassificationTensors& t, const Tensor& h,
                                  const Tensor& labels, float dloss) const {
  be.cross_entropy_backward(t.logits, t.logits, labels, num_classes_, dloss);
  if (!pooler_) {
    classifier_.backward(be, &dh, t.logits, h);
    return;
  }
  classifier_.backward(be, &t.dpooled, t.logits, t.pooled);
  be.activation_backward(t.dpooled, t.pre, t.dpooled, Activation::Tanh);
  pooler_->backward(be, &dh, t.dpooled, h);
}

}  // namespace kervan
