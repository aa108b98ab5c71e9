#pragma once
#include <cstdint>
#include <memory>

#include "core/model/model.h"
#include "core/optim/adamw.h"
#include "parallel/communicator.h"
#include "parallel/data_parallel.h"
#include "parallel/zero.h"

namespace kervan {

// How one rank's gradients become an update: its groups and the optimizer's sharding.
struct StepLayout {
  Communicator* dp = nullptr;         // the data-parallel group (null or size 1: one replica)
  Communicator* tp = nullptr;         // the model's tensor-parallel group (null or size 1: none)
  bool zero1 = false;                 // AdamW state sharded over dp (ZeRO-1)
  int64_t bucket_bytes = 25'000'000;  // all-reduce buckets of plain data parallelism
};

// The one recipe of a training step, for every layout (one process, DP, ZeRO-1, TP, DP x TP):
//
//   model.params().zero_grad();
//   for each micro-batch: model.forward(...); if last: before_last_backward(); model.backward(...);
//   norm = reduce_gradients();       // DP average (overlapped buckets, or ZeRO-1 reduce-scatter),
//                                    // then the global L2 norm over every shard
//   step(lr, clip_factor(norm, max_norm));   // AdamW (sharded under ZeRO-1)
//
// The layout is configured once, here; the trainer, the benchmark and the tests all drive it.
// As a Stateful it holds everything of a step that a checkpoint needs besides the data position:
// the model's parameters and the optimizer's state, with the writer of each slice marked.
class TrainStep final : public Stateful {
 public:
  TrainStep(Model& model, AdamWConfig adamw, StepLayout layout);

  // Call just before the backward of the last micro-batch: data-parallel buckets then start
  // reducing while that backward runs.
  void before_last_backward();
  // Averages the gradients over the data-parallel group and returns the global gradient norm
  // (the same on every rank).
  float reduce_gradients();
  // One AdamW step at `lr`, gradients multiplied by `grad_scale` first.
  void step(float lr, float grad_scale);

  int num_buckets() const { return reducer_ ? reducer_->num_buckets() : 0; }
  // Of the last step, plain data parallelism: seconds of all-reduce, and of it not hidden behind
  // backward; 0 otherwise.
  double comm_seconds() const { return reducer_ ? reducer_->comm_s() : 0.0; }
  double exposed_comm_seconds() const { return reducer_ ? reducer_->exposed_s() : 0.0; }
  // Optimizer-state elements this rank holds (m and v).
  int64_t optimizer_state_numel() const;

  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;

 private:
  Model& model_;
  StepLayout layout_;
  std::unique_ptr<GradientAllReducer> reducer_;  // plain DP
  std::unique_ptr<ShardedAdamW> sharded_;        // ZeRO-1
  std::unique_ptr<AdamW> adamw_;                 // otherwise
};

}  // namespace kervan
