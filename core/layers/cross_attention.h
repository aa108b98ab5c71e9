#pragma once
#include "core/layers/attention.h"

namespace kervan {

// What forward keeps for backward, per layer (Tq decoder positions, Tk encoder positions).
struct CrossAttentionSaved {
  Tensor q;      // [B, Tq, I]    x W_q^T
  Tensor kv;     // [B, Tk, 2I]   memory W_kv^T, [k | v]
  Tensor probs;  // the softmax, as Backend::attention_saved_shape() keeps it
  Tensor att;    // [B, Tq, I]
};

// Scratch shared by all layers' backward passes.
struct CrossAttentionScratch {
  Tensor datt;     // [B, Tq, I]
  Tensor dq;       // [B, Tq, I]
  Tensor dkv;      // [B, Tk, 2I]
  Tensor dprobs;   // Backend::attention_scratch_shape()
  Tensor dmemory;  // [B, Tk, C]
};

// Encoder-decoder attention (T5): the decoder's positions x attend to the encoder's output
// `memory`, every key visible but the encoder's padding:
//   q = x W_q^T,  [k | v] = memory W_kv^T,  att_h = softmax(s q_h k_h^T + padding mask) v_h,
//   y = [att_1 .. att_NH] W_o^T
// Backward adds the layer's part of d(memory) (every decoder layer reads the same memory).
// Tensor parallel like SelfAttention: q and the k|v blocks column-parallel (heads split), the
// output projection row-parallel with an all-reduce; d(memory) is all-reduced by the k|v
// projection's backward.
class CrossAttention {
 public:
  CrossAttention(ParameterSet& params, const std::string& name, int64_t dim, const AttentionOptions& opt,
                 TpGroup* tp = nullptr);
  // memory_lengths [B] int32: encoder positions >= length are padding (null: none).
  void forward(Backend& be, Tensor& y, CrossAttentionSaved& saved, const Tensor& x, const Tensor& memory,
               const Tensor* memory_lengths) const;
  // dx is overwritten; dmemory accumulates.
  void backward(Backend& be, Tensor& dx, Tensor& dmemory, const Tensor& dy, const Tensor& x,
                const Tensor& memory, const CrossAttentionSaved& saved, CrossAttentionScratch& scratch,
                const Tensor* memory_lengths) const;

 private:
  AttentionSpec spec(const Tensor* memory_lengths) const {
    return {n_head_, scale_, false, memory_lengths, nullptr};
  }
  int n_head_;
  int64_t inner_;
  float scale_;
  Linear q_;
  Linear kv_;
  Linear o_;
};

}  // namespace kervan
