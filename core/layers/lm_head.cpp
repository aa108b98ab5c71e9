#include "core/layers/lm_head.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace kervan {

LmHead::LmHead(const Parameter& weight, const Parameter* bias, int64_t vocab, int64_t vocab_begin,
               float alpha, TpGroup* tp)
    : weight_(weight),
      bias_(bias),
      vocab_(vocab),
      vocab_begin_(vocab_begin),
      alpha_(alpha),
      tp_(tp && tp->size() > 1 ? tp : nullptr) {}

int64_t LmHead::valid_columns(const Tensor& logits) const {
  return std::clamp<int64_t>(vocab_ - vocab_begin_, 0, logits.dim(1));
}

void LmHead::logits(Backend& be, Tensor& logits, const Tensor& h) const {
  be.matmul(logits, h, false, weight_.value, true, alpha_, 0.0f);
  if (bias_) be.add_bias(logits, bias_->value);
}

void LmHead::full_row(Backend& be, const Tensor& logits, int64_t n, float* out) const {
  const int64_t cols = logits.dim(1);
  KERVAN_CHECK(n >= 0 && n < logits.dim(0), "logits row out of range");
  const Tensor row = logits.rows(n, n + 1).view({cols});
  if (!tp_) {
    be.copy_to_host(out, row);
    return;
  }
  Tensor all = be.empty({cols * tp_->size()}, DType::F32);
  tp_->all_gather(all, row);  // shard k holds vocabulary columns [k*cols, (k+1)*cols)
  be.copy_to_host(out, all);
}

LossSum LmHead::forward(Backend& be, LmHeadTensors& t, const Tensor& h, const Tensor& targets,
                        const int32_t* host_targets) const {
  logits(be, t.logits, h);
  const int64_t N = t.logits.dim(0);
  LossSum out;
  if (!tp_) {
    be.cross_entropy_forward(t.losses, t.logits, targets, vocab_);
    const std::vector<float> losses = be.to_host<float>(t.losses);
    for (int64_t n = 0; n < N; ++n) {
      out.sum += losses[n];
      out.count += host_targets[n] >= 0;
    }
    return out;
  }
  const int64_t valid = valid_columns(t.logits);
  be.vocab_parallel_row_max(t.ce_max, t.logits, valid);
  tp_->all_reduce_max(t.ce_max);
  Tensor sum = t.ce_sum_tgt.slice_flat(0, {N}), tgt = t.ce_sum_tgt.slice_flat(N, {N});
  be.vocab_parallel_exp_sum_target(sum, tgt, t.logits, t.ce_max, targets, vocab_begin_, valid);
  tp_->all_reduce_sum(t.ce_sum_tgt);
  const std::vector<float> mx = be.to_host<float>(t.ce_max), stats = be.to_host<float>(t.ce_sum_tgt);
  for (int64_t n = 0; n < N; ++n) {
    if (host_targets[n] < 0) continue;
    out.sum += std::log(static_cast<double>(stats[n])) + mx[n] - stats[N + n];
    ++out.count;
  }
  return out;
}

void LmHead::backward(Backend& be, Tensor& dh, LmHeadTensors& t, const Tensor& h, const Tensor& targets,
                      float dloss) const {
  Tensor& dlogits = t.logits;
  if (tp_) {
    const int64_t N = dlogits.dim(0);
    be.vocab_parallel_cross_entropy_backward(dlogits, dlogits, t.ce_max, t.ce_sum_tgt.slice_flat(0, {N}),
                                             targets, vocab_begin_, valid_columns(dlogits), dloss);
  } else {
    be.cross_entropy_backward(dlogits, dlogits, targets, vocab_, dloss);
  }
  Tensor dw = weight_.grad;
  be.linear_backward(dw, &dh, dlogits, h, weight_.value, alpha_, 1.0f);
  if (tp_) tp_->all_reduce_sum(dh);
  if (bias_) {
    Tensor db = bias_->grad;
    be.bias_backward(db, dlogits);
  }
}

}  // namespace kervan
