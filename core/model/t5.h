#pragma once
#include <memory>
#include <vector>

#include "core/layers/attention.h"
#include "core/layers/cross_attention.h"
#include "core/layers/embedding.h"
#include "core/layers/lm_head.h"
#include "core/layers/mlp.h"
#include "core/layers/relative_position_bias.h"
#include "core/layers/rmsnorm.h"
#include "core/model/activation_arena.h"
#include "core/model/model.h"
#include "core/model/t5_config.h"

namespace kervan {

// T5 (Raffel et al. 2020), as Hugging Face's T5ForConditionalGeneration computes it:
//   encoder: x = wte[input];  per block  x = x + attn(rms_1(x));  x = x + ffn(rms_2(x));
//            memory = rms_f(x)
//   decoder: y = wte[decoder input];  per block  y = y + causal_attn(rms_1(y));
//            y = y + cross_attn(rms_2(y), memory);  y = y + ffn(rms_3(y));  out = rms_f(y)
//   logits = out wte^T * d_model^-0.5 (v1.0, tied) or out W_lm^T (v1.1)
// RMS norms without bias (eps 1e-6), attention without biases and without the 1/sqrt(d_kv) score
// scale (folded into q's initial std), one relative position bias per stack computed for its
// first block and added in every block (bidirectional buckets in the encoder, causal in the
// decoder), encoder padding (Batch::lengths) hidden from both the encoder's attention and the
// cross-attention. The loss is the mean cross-entropy over the decoder positions with targets >= 0.
// Initialisation as Hugging Face's (factor 1): wte and an own LM head N(0, 1); q N(0, (d_model
// d_kv)^-0.5), k and v N(0, d_model^-0.5), o N(0, (heads d_kv)^-0.5); feed-forward in N(0,
// d_model^-0.5), out N(0, d_ff^-0.5); bias tables N(0, d_model^-0.5); norms 1.
//
// Tensor parallel like GPT: heads (self and cross) and feed-forward columns split, the shared
// embedding and the LM head by vocabulary rows with a vocabulary-parallel cross-entropy, the
// relative position bias tables by head; the RMS norms are replicated.
class T5 final : public Model {
 public:
  T5(const T5Config& config, Backend& backend, int64_t max_batch, int64_t max_seq, int64_t max_decoder_seq,
     TpGroup* tp = nullptr);

  std::string family() const override { return "t5"; }
  void init_weights(uint64_t seed) override { params_.initialize(be_, seed); }
  using Model::forward;
  // Batch: tokens and lengths for the encoder, decoder_tokens and targets ([B, T_dec]) for the
  // decoder. Without targets, the logits of every decoder position (see decoder_logits_row).
  float forward(const Batch& batch) override;
  int64_t predicted_positions() const override { return valid_targets_; }
  void backward(float loss_scale) override;

  ParameterSet& params() override { return params_; }
  Backend& backend() override { return be_; }
  int64_t num_params() const override { return config_.num_params(); }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t logits_width() const override { return config_.padded_vocab(); }
  // Decoder position n (of B*T_dec) of the last forward's logits over the padded vocabulary, into
  // host `out`; under tensor parallelism every rank of the group calls it and gets the whole row.
  void decoder_logits_row(int64_t n, float* out);

  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;
  const T5Config& config() const { return config_; }

 private:
  struct EncoderBlock {
    RmsNorm ln_1;
    SelfAttention attn;
    RmsNorm ln_2;
    Mlp mlp;
  };
  struct DecoderBlock {
    RmsNorm ln_1;
    SelfAttention attn;
    RmsNorm ln_2;
    CrossAttention cross;
    RmsNorm ln_3;
    Mlp mlp;
  };
  struct EncoderSaved {
    Tensor n1, n1_rstd;
    AttentionSaved attn;
    Tensor res1, n2, n2_rstd;
    MlpSaved mlp;
    Tensor res2;
  };
  struct DecoderSaved {
    Tensor n1, n1_rstd;
    AttentionSaved attn;
    Tensor res1, n2, n2_rstd;
    CrossAttentionSaved cross;
    Tensor res2, n3, n3_rstd;
    MlpSaved mlp;
    Tensor res3;
  };
  // What one stack's pass needs besides its blocks' saved tensors, at its own length T.
  struct StackTensors {
    Tensor tokens, local_tokens, x0;
    Tensor buckets, bias, dbias;  // [T, T] int32; [NH_local, T, T]
    Tensor out, out_rstd;         // the final RMS norm
    Tensor y, dres, dln, dtmp;    // [B, T, C]
    AttentionScratch attn_scratch;
    MlpScratch mlp_scratch;
  };
  struct StepTensors {
    int64_t B = 0, Te = 0, Td = 0;
    Tensor lengths, targets;
    StackTensors enc, dec;
    std::vector<EncoderSaved> enc_blocks;
    std::vector<DecoderSaved> dec_blocks;
    CrossAttentionScratch cross_scratch;
    Tensor dmemory;  // [B, Te, C] d(encoder output), summed over the decoder's blocks
    LmHeadTensors lm;
  };

  void layout(int64_t B, int64_t Te, int64_t Td);
  StackTensors stack_layout(const RelativePositionBias& rel, int64_t B, int64_t T);
  void encoder_backward(int l);
  void decoder_backward(int l);
  const Tensor* lengths() const { return padded_ ? &step_.lengths : nullptr; }

  T5Config config_;
  Backend& be_;
  TpGroup* tp_;
  int64_t max_batch_, max_seq_, max_decoder_seq_;
  ParameterSet params_;
  std::unique_ptr<Embedding> embedding_;
  std::unique_ptr<RelativePositionBias> enc_rel_, dec_rel_;
  std::vector<EncoderBlock> enc_blocks_;
  std::vector<DecoderBlock> dec_blocks_;
  std::unique_ptr<RmsNorm> enc_ln_f_, dec_ln_f_;
  Parameter* lm_weight_ = nullptr;  // v1.1's own LM head
  std::unique_ptr<LmHead> lm_head_;
  // Declaration-order parameter ranges, reported ready as backward finishes each.
  std::vector<std::pair<size_t, size_t>> enc_params_, dec_params_;
  size_t enc_rel_param_ = 0, enc_ln_f_param_ = 0, dec_rel_param_ = 0, dec_ln_f_param_ = 0;

  ActivationArena arena_;
  StepTensors step_;
  bool padded_ = false;
  int64_t valid_targets_ = 0;
};

}  // namespace kervan
