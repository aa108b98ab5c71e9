#include "core/layers/cross_attention.h"

namespace kervan {

CrossAttention::CrossAttention(ParameterSet& params, const std::string& name, int64_t dim,
                               const AttentionOptions& opt, TpGroup* tp)
    : n_head_(opt.n_head / (tp ? tp->size() : 1)),
      inner_(attention_inner(opt, dim) / (tp ? tp->size() : 1)),
      scale_(attention_scale(opt, dim)),
      q_(params, name + ".q", dim, attention_inner(opt, dim), opt.q_std, opt.bias,
         {TpSplit::Kind::Column, tp}),
      kv_(params, name + ".kv", dim, 2 * attention_inner(opt, dim), opt.kv_std, opt.bias,
          {TpSplit::Kind::Column, tp, 2}),
      o_(params, name + ".o", attention_inner(opt, dim), dim, opt.proj_std, opt.bias,
         {TpSplit::Kind::Row, tp}) {}

void CrossAttention::forward(Backend& be, Tensor& y, CrossAttentionSaved& saved, const Tensor& x,
                             const Tensor& memory, const Tensor* memory_lengths) const {
  q_.forward(be, saved.q, x);
  kv_.forward(be, saved.kv, memory);
  be.attention_forward(saved.att, saved.probs, ColumnBlock::of(saved.q, 0, inner_),
                       ColumnBlock::of(saved.kv, 0, inner_), ColumnBlock::of(saved.kv, inner_, inner_),
                       spec(memory_lengths));
  o_.forward(be, y, saved.att);
}

void CrossAttention::backward(Backend& be, Tensor& dx, Tensor& dmemory, const Tensor& dy, const Tensor& x,
                              const Tensor& memory, const CrossAttentionSaved& saved,
                              CrossAttentionScratch& scratch, const Tensor* memory_lengths) const {
  o_.backward(be, &scratch.datt, dy, saved.att);
  const int64_t I = inner_;
  be.attention_backward(ColumnBlock::of(scratch.dq, 0, I), ColumnBlock::of(scratch.dkv, 0, I),
                        ColumnBlock::of(scratch.dkv, I, I), scratch.dprobs, scratch.datt, saved.att,
                        ColumnBlock::of(saved.q, 0, I), ColumnBlock::of(saved.kv, 0, I),
                        ColumnBlock::of(saved.kv, I, I), saved.probs, spec(memory_lengths));
  q_.backward(be, &dx, scratch.dq, x);
  kv_.backward(be, &scratch.dmemory, scratch.dkv, memory);
  be.add(dmemory, dmemory, scratch.dmemory);
}

}  // namespace kervan
