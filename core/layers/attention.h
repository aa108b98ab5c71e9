#pragma once
#include "core/layers/linear.h"

namespace kervan {

// What forward keeps for backward, per layer.
struct AttentionSaved {
  Tensor qkv;    // [B, T, 3C]  c_attn(x)
  Tensor probs;  // [B, NH, T, T] softmax of the causal scores
  Tensor att;    // [B, T, C]   heads concatenated, input of c_proj
};

// Scratch shared by all layers' backward passes.
struct AttentionScratch {
  Tensor datt;    // [B, T, C]
  Tensor dqkv;    // [B, T, 3C]
  Tensor dprobs;  // [B, NH, T, T]
};

// GPT-2 causal self-attention: a fused QKV projection, n_head heads of size C / n_head, and an
// output projection.
//   qkv = x W_attn^T + b_attn;   att_h = softmax(q_h k_h^T / sqrt(hs) + causal mask) v_h
//   y   = [att_1 .. att_NH] W_proj^T + b_proj
// The core (between the projections) is Backend::attention_forward / attention_backward.
// Tensor parallel over a group of p ranks (`tp`): heads are split, rank k owning heads
// [k*NH/p, (k+1)*NH/p). c_attn is column-parallel with its q, k and v blocks split alike (local
// weight [3C/p, C] laid out [q_k; k_k; v_k]), so the local qkv [B, T, 3C/p] is an ordinary fused
// qkv of NH/p heads; c_proj is row-parallel (local weight [C, C/p]) and all-reduces its output.
class CausalSelfAttention {
 public:
  CausalSelfAttention(ParameterSet& params, const std::string& name, int64_t dim, int n_head, float init_std,
                      float proj_std, TpGroup* tp = nullptr);
  void forward(Backend& be, Tensor& y, AttentionSaved& saved, const Tensor& x) const;
  // dx is overwritten.
  void backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const AttentionSaved& saved,
                AttentionScratch& scratch) const;

 private:
  int n_head_;  // local heads
  Linear c_attn_;
  Linear c_proj_;
};

}  // namespace kervan
