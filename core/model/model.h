#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/parameters.h"
#include "core/state.h"

namespace kervan {

// One batch on the host: B sequences of T positions. targets[b, t] is what the model should
// predict at position t (a token; a class under a classification head), or -1 where nothing is
// predicted (padding, unmasked BERT positions). GPT reads tokens and targets; BERT also the token
// types and lengths; T5 reads tokens and lengths for its encoder, and decoder_tokens and targets
// ([B, T_dec]) for its decoder.
struct Batch {
  int64_t B = 0, T = 0;
  const int32_t* tokens = nullptr;       // [B, T]
  const int32_t* targets = nullptr;      // [B, T] ([B, T_dec] for T5); null for inference
  const int32_t* token_types = nullptr;  // [B, T] BERT's segments (0 or 1); null: all 0
  // Encoder padding: positions t >= lengths[b] of sequence b are padding, attended by no position
  // (each length in [1, T]); null: none.
  const int32_t* lengths = nullptr;  // [B]
  int64_t T_dec = 0;
  const int32_t* decoder_tokens = nullptr;  // [B, T_dec] T5: the targets shifted right behind the start token
  // Recurrent models with a carried hidden state (model.carry_state): row b continues the stream
  // row b of the previous carried forward ended, so it starts from that forward's final state
  // (zeros when reset_state, or before any carried forward) and leaves its own final state for the
  // next. Without carry_state every row starts from zeros and the carried state is left alone
  // (validation, generation).
  bool carry_state = false;
  bool reset_state = false;
};

// What the trainer, generation, the benchmarks and the tests drive, whatever the family (GPT
// today; BERT, T5 and recurrent models implement the same interface). A model owns its
// parameters (one flat ParameterSet) and its activations, runs forward and backward on its
// backend, and reports each gradient as soon as it is final so that data parallelism can start
// reducing it while backward goes on.
class Model : public Stateful {
 public:
  ~Model() override = default;
  virtual std::string family() const = 0;  // "gpt", "bert", "t5", "rnn", "lstm", "gru"

  // Parameters drawn from `seed`, the same global values under every parallel layout; gradients
  // zeroed.
  virtual void init_weights(uint64_t seed) = 0;

  // Mean cross-entropy over the batch's predicted positions (0 when targets is null).
  virtual float forward(const Batch& batch) = 0;
  float forward(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T) {
    return forward(Batch{B, T, tokens, targets});
  }
  // Predicted positions of the last forward: the count its mean divides by.
  virtual int64_t predicted_positions() const = 0;
  // Accumulates d(loss_scale * mean loss)/d(parameters) for the last forward.
  virtual void backward(float loss_scale) = 0;

  virtual ParameterSet& params() = 0;
  virtual Backend& backend() = 0;
  // Trained parameters of the whole (unsharded) model, for MFU (6 x params x tokens/s).
  virtual int64_t num_params() const = 0;
  virtual int64_t vocab_size() const = 0;

  // Called during backward with each parameter as soon as its gradient is complete.
  using GradReadyHook = std::function<void(const Parameter&)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }

  // A table whose gradient is mostly dense but gets sparse rows last (GPT's tied token embedding:
  // the LM head's dense gradient comes first in backward, the lookup's rows at its very end).
  // When the hook is set, the model reports the table ready after its dense part and hands the
  // rows ([N, C] and their ids [N]) to the hook at the end of backward; if the hook returns
  // false, the model adds them itself. Null when the model has no such table (or, like GPT under
  // tensor parallelism, does not split it this way).
  using SparseRowsHook = std::function<bool(const Tensor& rows, const Tensor& ids)>;
  virtual const Parameter* sparse_rows_table() const { return nullptr; }
  virtual void set_sparse_rows_hook(SparseRowsHook) {}

  // Generation, where the family has it: forward over one context of T tokens and the logits of
  // its last position over the whole padded vocabulary (logits_width() floats) into host `out`.
  // Under tensor parallelism every rank of the group calls it and gets the whole row.
  virtual bool can_generate() const { return false; }
  virtual int64_t logits_width() const { return 0; }
  virtual int64_t max_context() const { return 0; }
  virtual void next_token_logits(const int32_t* context, int64_t T, float* out);
  // The same with a cache of each layer's keys and values, where the family has one (GPT):
  // cache_prefill empties the cache and runs context[0, T) at positions [0, T), keeping their
  // keys and values; each cache_decode then runs one more token at the next position, attending
  // to the cached keys and values and adding its own. Both write the last token's logits, as
  // next_token_logits does for the whole context. The cache holds at most max_context()
  // positions; release_cache frees it. Under tensor parallelism every rank of the group calls them
  // alike, and each rank caches its own heads.
  virtual bool has_kv_cache() const { return false; }
  virtual void cache_prefill(const int32_t* context, int64_t T, float* out);
  virtual void cache_decode(int32_t token, float* out);
  virtual int64_t cached_positions() const { return 0; }
  virtual void release_cache() {}

  // Under a classification head: the [M, num_classes] class scores of the last forward, one row
  // per labelled position in (b, t) order; empty for other heads.
  virtual std::vector<float> class_logits() { return {}; }

  // Where this model's per-replica state sits among the data-parallel replicas (rank `dp_rank` of
  // `dp_size`, each with its own rows of the global batch): a recurrent model's carried hidden
  // state is saved as rows [dp_rank * B, (dp_rank + 1) * B) of one global tensor. Models without
  // such state ignore it.
  virtual void set_replica(int dp_rank, int dp_size) {
    (void)dp_rank;
    (void)dp_size;
  }

  // The recurrent study (docs/recurrent-study.md): while on, each backward records the L2 norm,
  // over the batch, of d(loss)/d(state at position t) for t = T-1 down to 0 (entry k: k positions
  // back from the window's end). The state is the top recurrent layer's hidden state h_t; GPT's,
  // the residual stream entering its last block (the last place where position t can still reach
  // position T-1). Empty for families that do not record.
  virtual void record_position_grad_norms(bool on) { (void)on; }
  virtual std::vector<double> position_grad_norms() const { return {}; }

 protected:
  // Reports parameters [first, last) of params() (declaration order) to the grad-ready hook.
  void report_grads(size_t first, size_t last);
  GradReadyHook grad_ready_;
};

}  // namespace kervan
