#pragma once
#include <memory>
#include <vector>

#include "core/layers/attention.h"
#include "core/layers/classification_head.h"
#include "core/layers/embedding.h"
#include "core/layers/layernorm.h"
#include "core/layers/mlm_head.h"
#include "core/layers/mlp.h"
#include "core/model/activation_arena.h"
#include "core/model/bert_config.h"
#include "core/model/labelled_rows.h"
#include "core/model/model.h"

namespace kervan {

// BERT (Devlin et al. 2019): word + position + token-type embeddings and a LayerNorm, then n_layer
// post-LN blocks of bidirectional attention over the real (unpadded) tokens
//   x = LayerNorm(x + attn(x));  x = LayerNorm(x + mlp(x))      (erf GELU, LayerNorm eps 1e-12)
// and a head on chosen positions of the last block's output:
//  - pretraining: the masked-LM head (MlmHead: transform, decoder tied to the word embedding, own
//    bias) on the masked positions, i.e. those with Batch::targets >= 0; the loss is the mean
//    cross-entropy over them;
//  - fine-tuning (num_classes > 0): a classification head with BERT's pooler on [CLS], the position
//    that carries the sequence's label in Batch::targets.
// Heads run on the gathered rows only (about 15% of positions for MLM), not on every position.
// Initialisation as BERT's: N(0, 0.02) weights, zero biases, LayerNorms at 1 and 0.
//
// Tensor parallel like GPT: attention heads and feed-forward columns split, the word embedding and
// the MLM decoder (and its bias) by vocabulary rows with a vocabulary-parallel cross-entropy;
// position and token-type embeddings, LayerNorms, the MLM transform and a classification head are
// replicated (bit-identical on every rank, as GPT's replicated parameters).
class Bert final : public Model {
 public:
  Bert(const BertConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq, TpGroup* tp = nullptr,
       int64_t num_classes = 0);

  std::string family() const override { return "bert"; }
  void init_weights(uint64_t seed) override { params_.initialize(be_, seed); }
  using Model::forward;
  float forward(const Batch& batch) override;
  int64_t predicted_positions() const override { return rows_.size(); }
  void backward(float loss_scale) override;

  ParameterSet& params() override { return params_; }
  Backend& backend() override { return be_; }
  int64_t num_params() const override { return config_.num_params(); }
  int64_t vocab_size() const override { return config_.vocab_size; }
  std::vector<float> class_logits() override;

  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;
  const BertConfig& config() const { return config_; }

 private:
  struct Block {
    SelfAttention attn;
    LayerNorm ln_1;
    Mlp mlp;
    LayerNorm ln_2;
  };
  struct BlockSaved {
    AttentionSaved attn;
    Tensor res1;  // x + attn(x)
    Tensor x1, ln1_mean, ln1_rstd;
    MlpSaved mlp;
    Tensor res2;                    // x1 + mlp(x1)
    Tensor x2, ln2_mean, ln2_rstd;  // block output
  };
  struct StepTensors {
    int64_t B = 0, T = 0;
    Tensor tokens, local_tokens, types, lengths;
    Tensor x0, emb, emb_mean, emb_rstd;  // embeddings; after their LayerNorm
    std::vector<BlockSaved> blocks;
    Tensor y;                // attn / mlp output before the residual add
    Tensor dres, dln, dtmp;  // backward scratch
    AttentionScratch attn_scratch;
    MlpScratch mlp_scratch;
    // The head's rows (at most B*T): their ids in [B*T], targets, hidden states and gradient.
    Tensor row_ids, row_targets, h, dh;
    MlmHeadTensors mlm;
    ClassificationTensors cls;
  };

  void layout(int64_t B, int64_t T);
  void block_forward(const Block& blk, BlockSaved& s, const Tensor& x, const AttentionContext& ctx);
  void block_backward(const Block& blk, const BlockSaved& s, const Tensor& x, const AttentionContext& ctx);
  AttentionContext attention_context() const;

  BertConfig config_;
  Backend& be_;
  TpGroup* tp_;
  int64_t max_batch_, max_seq_;
  ParameterSet params_;
  std::unique_ptr<Embedding> embedding_;
  std::unique_ptr<LayerNorm> emb_ln_;
  std::vector<Block> blocks_;
  std::unique_ptr<MlmHead> mlm_;
  std::unique_ptr<ClassificationHead> classifier_;
  std::vector<std::pair<size_t, size_t>> block_params_;  // declaration-order ranges
  size_t head_params_ = 0;

  ActivationArena arena_;
  StepTensors step_;
  bool padded_ = false;  // the last forward had Batch::lengths
  LabelledRows rows_;    // of the last forward
};

}  // namespace kervan
