#pragma once
#include <memory>
#include <vector>

#include "core/layers/lm_head.h"
#include "core/layers/recurrent.h"
#include "core/model/activation_arena.h"
#include "core/model/model.h"
#include "core/model/recurrent_config.h"
#include "core/tp_group.h"

namespace kervan {

// A recurrent language model (model.arch = rnn | lstm | gru): token embedding wte [Vp, C] (no
// positions: the recurrence orders the tokens), n_layer RecurrentLayers of C hidden units
// (optionally residual: x_{l+1} = x_l + layer(x_l)), and an LM head, tied to wte (logits = h wte^T)
// or a [Vp, C] matrix of its own. No dropout, no normalisation. Embedding and head start N(0, 0.02)
// like GPT's; the layers as RecurrentLayer says.
//
// Truncated backpropagation through time over the window: every forward starts from zeros, or,
// with Batch::carry_state, from the final state the previous carried forward left in each row
// (layer by layer; the LSTM's cell state too). Backward never crosses into the earlier window:
// truncation cuts only the gradient. The carried state is part of the model's state (carry/h,
// carry/c: global [n_layer, B * dp_size, C], this replica's rows placed by set_replica), so a
// checkpoint resumes it exactly.
//
// Internally time-major: step t of the batch is rows [t*B, (t+1)*B), so every step's GEMM reads
// contiguous rows. Tensor parallelism is refused (UserError naming parallel.tp); data parallelism
// works as for any model.
class RecurrentLM final : public Model {
 public:
  RecurrentLM(const RecurrentConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq,
              TpGroup* tp = nullptr);

  std::string family() const override { return recurrent_cell_name(config_.cell); }
  void init_weights(uint64_t seed) override;
  using Model::forward;
  float forward(const Batch& batch) override;
  int64_t predicted_positions() const override { return valid_targets_; }
  void backward(float loss_scale) override;

  ParameterSet& params() override { return params_; }
  Backend& backend() override { return be_; }
  int64_t num_params() const override { return config_.num_params(); }
  int64_t vocab_size() const override { return config_.vocab_size; }
  const Parameter* sparse_rows_table() const override { return config_.tied ? wte_ : nullptr; }
  void set_sparse_rows_hook(SparseRowsHook hook) override { sparse_rows_ = std::move(hook); }

  bool can_generate() const override { return true; }
  int64_t logits_width() const override { return config_.padded_vocab(); }
  int64_t max_context() const override { return max_seq_; }
  void next_token_logits(const int32_t* context, int64_t T, float* out) override;

  void set_replica(int dp_rank, int dp_size) override;
  // The parameters as model/<name>, and the carried state (with carry_state) as carry/h, carry/c.
  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;

  const RecurrentConfig& config() const { return config_; }
  // The top layer's d(loss)/d(h_t) norms (Model), t = T-1 .. 0.
  void record_position_grad_norms(bool on) override { record_norms_ = on; }
  std::vector<double> position_grad_norms() const override { return norms_; }
  // The carried hidden state of layer l, [B, C] (zeros before any carried forward).
  std::vector<float> carried_state(int layer);

 private:
  struct StepTensors {
    int64_t B = 0, T = 0;
    Tensor tokens, targets;  // [T*B] time-major
    Tensor x0;               // [T, B, C]
    std::vector<RecurrentSaved> layers;
    std::vector<Tensor> res;  // residual: [T, B, C] each layer's output x_l + y_l
    LmHeadTensors lm;
    RecurrentScratch scratch;
    Tensor dres, dtmp;  // [T, B, C]
  };
  void layout(int64_t B, int64_t T);

  RecurrentConfig config_;
  Backend& be_;
  int64_t max_batch_, max_seq_;
  ParameterSet params_;
  Parameter* wte_ = nullptr;
  Parameter* head_ = nullptr;  // untied output layer
  std::vector<RecurrentLayer> layers_;
  std::unique_ptr<LmHead> lm_head_;
  size_t head_params_ = 0;
  SparseRowsHook sparse_rows_;

  ActivationArena arena_;
  StepTensors step_;
  std::vector<int32_t> host_tokens_, host_targets_;
  int64_t valid_targets_ = 0;

  // carried state, [n_layer, max_batch, C] each (carry_c for the LSTM)
  Tensor carry_h_, carry_c_;
  int dp_rank_ = 0, dp_size_ = 1;
  bool record_norms_ = false;
  std::vector<double> norms_;
};

}  // namespace kervan
