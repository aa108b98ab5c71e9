#include "core/layers/attention.h"

namespace kervan {

CausalSelfAttention::CausalSelfAttention(ParameterSet& params, const std::string& name, int64_t dim,
                                         int n_head, float init_std, float proj_std, TpGroup* tp)
    : n_head_(n_head / (tp ? tp->size() : 1)),
      c_attn_(params, name + ".c_attn", dim, 3 * dim, init_std, true, {TpSplit::Kind::Column, tp, 3}),
      c_proj_(params, name + ".c_proj", dim, dim, proj_std, true, {TpSplit::Kind::Row, tp}) {}

void CausalSelfAttention::forward(Backend& be, Tensor& y, AttentionSaved& saved, const Tensor& x) const {
  c_attn_.forward(be, saved.qkv, x);
  be.attention_forward(saved.att, saved.probs, saved.qkv, n_head_);
  c_proj_.forward(be, y, saved.att);
}

void CausalSelfAttention::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x,
                                   const AttentionSaved& saved, AttentionScratch& scratch) const {
  c_proj_.backward(be, &scratch.datt, dy, saved.att);
  be.attention_backward(scratch.dqkv, scratch.dprobs, scratch.datt, saved.qkv, saved.probs, n_head_);
  c_attn_.backward(be, &dx, scratch.dqkv, x);
}

}  // namespace kervan
