#pragma once
#include "core/layers/linear.h"

namespace kervan {

// What forward keeps for backward, per layer.
struct AttentionSaved {
  Tensor qkv;    // [B, T, 3I]   c_attn(x), I = heads * head size
  Tensor probs;  // the softmax, as Backend::attention_saved_shape() keeps it
  Tensor att;    // [B, T, I]    heads concatenated, input of c_proj
};

// Scratch shared by all layers' backward passes.
struct AttentionScratch {
  Tensor datt;    // [B, T, I]
  Tensor dqkv;    // [B, T, 3I]
  Tensor dprobs;  // Backend::attention_scratch_shape(); dS [B, NH, T, T] with a bias
};

// The shape of an attention layer and how it starts.
struct AttentionOptions {
  int n_head = 1;
  int64_t head_dim = 0;  // 0: dim / n_head (T5 allows heads * head_dim != dim)
  bool causal = false;   // GPT, T5's decoder
  bool bias = true;      // Linear biases (GPT, BERT); T5 has none
  bool scaled = true;    // scores * 1/sqrt(head_dim); T5 folds that into q's initial std instead
  float q_std = 0.02f, kv_std = 0.02f, proj_std = 0.02f;  // initial std of the weights
};

// Per call: padding of the keys and an additive position bias (T5).
struct AttentionContext {
  const Tensor* key_lengths = nullptr;  // [B] int32: keys >= length are padding
  const Tensor* bias = nullptr;         // [NH_local, T, T] added to the scores
  Tensor* dbias = nullptr;              // backward: += sum over the batch of d(scores)
};

// Multi-head self-attention: a fused QKV projection, n_head heads of size head_dim, an output
// projection.
//   qkv = x W_attn^T + b_attn;   att_h = softmax(s q_h k_h^T + bias_h + mask) v_h
//   y   = [att_1 .. att_NH] W_proj^T + b_proj
// with s = 1/sqrt(head_dim) (or 1), and the mask hiding future keys (causal) and padding keys.
// The core (between the projections) is Backend::attention_forward / attention_backward.
// Tensor parallel over a group of p ranks (`tp`): heads are split, rank k owning heads
// [k*NH/p, (k+1)*NH/p). c_attn is column-parallel with its q, k and v blocks split alike (local
// weight [3I/p, C] laid out [q_k; k_k; v_k]), so the local qkv [B, T, 3I/p] is an ordinary fused
// qkv of NH/p heads; c_proj is row-parallel (local weight [C, I/p]) and all-reduces its output.
// A position bias is then this rank's heads' [NH/p, T, T].
class SelfAttention {
 public:
  SelfAttention(ParameterSet& params, const std::string& name, int64_t dim, const AttentionOptions& opt,
                TpGroup* tp = nullptr);
  void forward(Backend& be, Tensor& y, AttentionSaved& saved, const Tensor& x,
               const AttentionContext& ctx = {}) const;
  // dx is overwritten.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const AttentionSaved& saved,
                AttentionScratch& scratch, const AttentionContext& ctx = {}) const;
  // Generation with a cache of keys and values (causal layers only). x [1, n, C] holds positions
  // [pos, pos + n) of one sequence whose earlier keys and values are rows [0, pos) of `kv`
  // [capacity, 2I] (this rank's heads: k in columns [0, I), v in [I, 2I)). The new positions'
  // keys and values go to rows [pos, pos + n), and query pos + i attends to keys [0, pos + i]:
  // the same y as forward over the whole sequence gives at those positions. Either a prefill
  // (pos = 0, causal over the n positions) or one step (n = 1, every cached key visible).
  // `saved` (qkv, att, probs) is scratch: qkv [1, n, 3I], att [1, n, I], probs at least
  // NH * n * (pos + n) floats.
  void forward_cached(Backend& be, Tensor& y, Tensor& kv, int64_t pos, const Tensor& x,
                      AttentionSaved& saved) const;

  int local_heads() const { return n_head_; }
  int64_t local_inner() const { return inner_; }  // this rank's heads * head_dim

 private:
  AttentionSpec spec(const AttentionContext& ctx) const;
  int n_head_;     // local heads
  int64_t inner_;  // local heads * head_dim
  float scale_;
  bool causal_;
  Linear c_attn_;
  Linear c_proj_;
};

// Of an attention layer with these options over width `dim` (self- and cross-attention alike): the
// score scale, and the global heads * head_dim.
float attention_scale(const AttentionOptions& opt, int64_t dim);
int64_t attention_inner(const AttentionOptions& opt, int64_t dim);

}  // namespace kervan
