#include "core/layers/attention.h"

#include <cmath>

#include "core/error.h"

namespace kervan {

int64_t attention_inner(const AttentionOptions& opt, int64_t dim) {
  KERVAN_CHECK(opt.n_head > 0 && (opt.head_dim > 0 || dim % opt.n_head == 0),
               "attention heads do not divide dim");
  return opt.n_head * (opt.head_dim > 0 ? opt.head_dim : dim / opt.n_head);
}

float attention_scale(const AttentionOptions& opt, int64_t dim) {
  const int64_t hd = attention_inner(opt, dim) / opt.n_head;
  return opt.scaled ? 1.0f / std::sqrt(static_cast<float>(hd)) : 1.0f;
}

SelfAttention::SelfAttention(ParameterSet& params, const std::string& name, int64_t dim,
                             const AttentionOptions& opt, TpGroup* tp)
    : n_head_(opt.n_head / (tp ? tp->size() : 1)),
      inner_(attention_inner(opt, dim) / (tp ? tp->size() : 1)),
      scale_(attention_scale(opt, dim)),
      causal_(opt.causal),
      c_attn_(params, name + ".c_attn", dim, 3 * attention_inner(opt, dim), opt.kv_std, opt.bias,
              {TpSplit::Kind::Column, tp, 3}),
      c_proj_(params, name + ".c_proj", attention_inner(opt, dim), dim, opt.proj_std, opt.bias,
              {TpSplit::Kind::Row, tp}) {
  if (opt.q_std != opt.kv_std) c_attn_.weight().init.block_std = {opt.q_std, opt.kv_std, opt.kv_std};
}

AttentionSpec SelfAttention::spec(const AttentionContext& ctx) const {
  return {n_head_, scale_, causal_, ctx.key_lengths, ctx.bias};
}

void SelfAttention::forward(Backend& be, Tensor& y, AttentionSaved& saved, const Tensor& x,
                            const AttentionContext& ctx) const {
  c_attn_.forward(be, saved.qkv, x);
  const Tensor& qkv = saved.qkv;
  be.attention_forward(saved.att, saved.probs, ColumnBlock::of(qkv, 0, inner_),
                       ColumnBlock::of(qkv, inner_, inner_), ColumnBlock::of(qkv, 2 * inner_, inner_),
                       spec(ctx));
  c_proj_.forward(be, y, saved.att);
}

void SelfAttention::forward_cached(Backend& be, Tensor& y, Tensor& kv, int64_t pos, const Tensor& x,
                                   AttentionSaved& saved) const {
  const int64_t n = x.dim(1), I = inner_;
  KERVAN_CHECK(causal_ && x.dim(0) == 1 && (pos == 0 || n == 1) && pos + n <= kv.dim(0) && kv.dim(1) == 2 * I,
               "cached attention: " + std::to_string(n) + " positions at " + std::to_string(pos) +
                   " of a cache " + shape_str(kv.shape()));
  c_attn_.forward(be, saved.qkv, x);
  for (int64_t i = 0; i < n; ++i) {  // position pos + i's keys and values: columns [I, 3I) of its q|k|v row
    Tensor row = kv.rows(pos + i, pos + i + 1).view({2 * I});
    be.copy(row, saved.qkv.slice_flat(i * 3 * I + I, {2 * I}));
  }
  const Tensor keys = kv.rows(0, pos + n).view({1, pos + n, 2 * I});
  Tensor probs = saved.probs.slice_flat(0, {1, n_head_, n, pos + n});
  // One new query sees every cached key, so the causal mask is only needed for a prefill.
  const AttentionSpec s{n_head_, scale_, n > 1, nullptr, nullptr};
  be.attention_forward(saved.att, probs, ColumnBlock::of(saved.qkv, 0, I), ColumnBlock::of(keys, 0, I),
                       ColumnBlock::of(keys, I, I), s);
  c_proj_.forward(be, y, saved.att);
}

void SelfAttention::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x,
                             const AttentionSaved& saved, AttentionScratch& scratch,
                             const AttentionContext& ctx) const {
  c_proj_.backward(be, &scratch.datt, dy, saved.att);
  const Tensor &qkv = saved.qkv, &dqkv = scratch.dqkv;
  const int64_t I = inner_;
  be.attention_backward(ColumnBlock::of(dqkv, 0, I), ColumnBlock::of(dqkv, I, I),
                        ColumnBlock::of(dqkv, 2 * I, I), scratch.dprobs, scratch.datt, saved.att,
                        ColumnBlock::of(qkv, 0, I), ColumnBlock::of(qkv, I, I),
                        ColumnBlock::of(qkv, 2 * I, I), saved.probs, spec(ctx));
  if (ctx.dbias) {  // d(bias_h) = sum over the batch of dS_bh
    KERVAN_CHECK(ctx.bias, "attention dbias without a bias");
    be.bias_backward(*ctx.dbias, scratch.dprobs.view({qkv.dim(0), ctx.dbias->numel()}));
  }
  c_attn_.backward(be, &dx, scratch.dqkv, x);
}

}  // namespace kervan
