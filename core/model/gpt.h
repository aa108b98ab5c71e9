#pragma once
#include <memory>
#include <vector>

#include "core/layers/attention.h"
#include "core/layers/classification_head.h"
#include "core/layers/embedding.h"
#include "core/layers/layernorm.h"
#include "core/layers/lm_head.h"
#include "core/layers/mlp.h"
#include "core/model/activation_arena.h"
#include "core/model/gpt_config.h"
#include "core/model/labelled_rows.h"
#include "core/model/model.h"

namespace kervan {

// GPT-2: token + position embedding, n_layer pre-LN blocks
//   x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
// a final LayerNorm, and an LM head tied to the token embedding (logits = ln_f(x) wte^T).
// Initialisation follows GPT-2: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)).
// With `num_classes` > 0 the LM head gives way to a classification head (fine-tuning): a
// sequence's label sits at its last token's position of Batch::targets (-1 elsewhere), and the
// head reads ln_f's output there.
//
// Tensor parallel (Megatron-LM) when built with a TpGroup of p > 1 ranks: attention heads and MLP
// columns are split (see SelfAttention, Mlp), the token embedding and LM head by vocabulary
// rows (see Embedding), and the loss is a vocabulary-parallel cross-entropy (LmHead) that never
// holds more than this rank's [B*T, Vp/p] logits. LayerNorms, row-parallel biases, wpe and a
// classification head are replicated.
// Their gradients need no all-reduce: without sequence parallelism every rank of the group
// computes them from the same (all-reduced) activations with the same deterministic kernels, so
// the replicas stay bit-identical (as in Megatron-LM; tests/mpi/test_tensor_parallel.cpp checks it).
// Each rank's ParameterSet holds its shards (Parameter::sharding maps them into the global tensors),
// initialised from the global streams: every layout starts from the same model.
//
// The model owns its activations, sized once for (max_batch, max_seq); any smaller batch or
// sequence runs on views of the same memory.
class GPT final : public Model {
 public:
  // `tp`: the tensor-parallel group (null or size 1: no tensor parallelism). Throws UserError
  // naming parallel.tp when the model does not split across it.
  GPT(const GPTConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq, TpGroup* tp = nullptr,
      int64_t num_classes = 0);

  std::string family() const override { return "gpt"; }
  void init_weights(uint64_t seed) override;
  using Model::forward;
  float forward(const Batch& batch) override;
  int64_t predicted_positions() const override { return valid_targets_; }
  // Overwrites the logits.
  void backward(float loss_scale) override;

  ParameterSet& params() override { return params_; }
  Backend& backend() override { return be_; }
  int64_t num_params() const override { return config_.num_params(); }
  int64_t vocab_size() const override { return config_.vocab_size; }
  // wte: the LM head's gradient comes first in backward, the embedding lookup's rows last. Not
  // under tensor parallelism (wte is reported with the embedding there).
  const Parameter* sparse_rows_table() const override { return tp_ ? nullptr : &embedding_->wte(); }
  void set_sparse_rows_hook(SparseRowsHook hook) override { sparse_rows_ = std::move(hook); }

  bool can_generate() const override { return !classifier_; }
  int64_t logits_width() const override { return config_.padded_vocab(); }
  int64_t max_context() const override { return max_seq_; }
  void next_token_logits(const int32_t* context, int64_t T, float* out) override;
  // The KV cache: per layer [max_context, 2 * local heads * head size], this rank's heads' keys
  // and values, allocated by the first prefill (kv_cache_bytes) and kept until release_cache.
  bool has_kv_cache() const override { return !classifier_; }
  void cache_prefill(const int32_t* context, int64_t T, float* out) override;
  void cache_decode(int32_t token, float* out) override;
  int64_t cached_positions() const override { return cache_.length; }
  void release_cache() override { cache_ = {}; }
  int64_t kv_cache_bytes() const;
  std::vector<float> class_logits() override;
  // The residual stream entering the last block (Model).
  void record_position_grad_norms(bool on) override { record_norms_ = on; }
  std::vector<double> position_grad_norms() const override { return norms_; }

  // The parameters as model/<name>, each slice placed in its global tensor; no values.
  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;

  // [B*T, padded_vocab] logits of the last forward (valid until backward); under tensor
  // parallelism this rank's columns [B*T, padded_vocab / p] only.
  const Tensor& logits() const { return step_.lm.logits; }
  // Row n of the last forward's [B*T, padded_vocab] logits, over the whole padded vocabulary,
  // into host memory `out`. Under tensor parallelism every rank of the group must call it (the
  // shards' columns are all-gathered) and every rank gets the whole row.
  void logits_row(int64_t n, float* out);
  const GPTConfig& config() const { return config_; }
  // Tensor-parallel size (1 without tensor parallelism).
  int tp_size() const { return tp_ ? tp_->size() : 1; }

  // Bytes of the activations and scratch a language model (no classifier) built for (max_batch,
  // max_seq) on each of `tp` tensor-parallel ranks of `device` holds, before it is built: what
  // layout() allocates, counted the same way (a test holds the two equal).
  static int64_t activation_bytes(const GPTConfig& config, int tp, int64_t max_batch, int64_t max_seq,
                                  Device device = Device::CPU);
  // What this model's activation arena holds.
  int64_t activation_bytes() const { return arena_.bytes(); }

 private:
  struct Block {
    LayerNorm ln_1;
    SelfAttention attn;
    LayerNorm ln_2;
    Mlp mlp;
  };
  // Activations one block keeps for backward.
  struct BlockSaved {
    Tensor ln1, ln1_mean, ln1_rstd;
    AttentionSaved attn;
    Tensor res1;  // x + attn(ln_1(x))
    Tensor ln2, ln2_mean, ln2_rstd;
    MlpSaved mlp;
    Tensor res2;  // block output
  };
  // Every tensor one step touches, as views of the right (B, T) into max-size buffers.
  struct StepTensors {
    int64_t B = 0, T = 0;
    Tensor tokens, targets, x0;
    Tensor local_tokens;  // TP: ids in this rank's vocabulary shard, else -1
    std::vector<BlockSaved> blocks;
    Tensor lnf, lnf_mean, lnf_rstd;
    LmHeadTensors lm;
    Tensor y;                // output of attn / mlp before the residual add
    Tensor dres, dln, dtmp;  // backward scratch
    AttentionScratch attn_scratch;
    MlpScratch mlp_scratch;
  };
  // The labelled rows of a classification step (at most B, one per sequence).
  struct ClassifyTensors {
    LabelledRows rows;
    Tensor ids, labels, h, dh;
    ClassificationTensors head;
  };

  // Keys and values of the cached positions [0, length), one tensor per layer; probs is the
  // attention scratch of a one-token step ([NH, max_seq] floats).
  struct KvCache {
    std::vector<Tensor> kv;
    Tensor probs;
    int64_t length = 0;
  };

  // Builds every step tensor for (B, T) from the arena, always in the same order.
  void layout(int64_t B, int64_t T);
  // Embedding, blocks and ln_f of the B x T tokens. With `cached` (B = 1) the tokens sit at
  // positions [cache_.length, cache_.length + T) and attention reads and extends the KV cache.
  void trunk_forward(const int32_t* tokens, int64_t B, int64_t T, bool cached);
  // cache_pos >= 0: attention through layer l's KV cache, the block's tokens starting there.
  void block_forward(const Block& blk, BlockSaved& s, const Tensor& x, int l = 0, int64_t cache_pos = -1);
  // The cached forward of n tokens after the cached ones, and the last one's logits into `out`.
  void cached_step(const int32_t* tokens, int64_t n, float* out);
  void record_norms(const Tensor& dx);
  void block_backward(const Block& blk, const BlockSaved& s, const Tensor& x);
  LossSum classify_forward(const int32_t* targets, int64_t BT);
  void classify_backward(float dloss, int64_t BT);

  static TpGroup* checked_tp(const GPTConfig& config, TpGroup* tp);
  GPTConfig config_;
  Backend& be_;
  TpGroup* tp_;
  int64_t max_batch_, max_seq_;
  ParameterSet params_;
  std::unique_ptr<Embedding> embedding_;
  std::vector<Block> blocks_;
  std::unique_ptr<LayerNorm> ln_f_;
  std::unique_ptr<LmHead> lm_head_;
  std::unique_ptr<ClassificationHead> classifier_;
  // Declaration-order index ranges of each block's parameters, and where ln_f's begin.
  std::vector<std::pair<size_t, size_t>> block_params_;
  size_t ln_f_params_ = 0, classifier_params_ = 0;
  SparseRowsHook sparse_rows_;

  ActivationArena arena_;
  StepTensors step_;
  ClassifyTensors cls_;
  int64_t valid_targets_ = 0;
  bool record_norms_ = false;
  std::vector<double> norms_;
  bool last_logits_only_ = false;  // next_token_logits: the LM head on the last position only
  KvCache cache_;
};

}  // namespace kervan
