#pragma once
#include "core/optim/adamw.h"
#include "parallel/communicator.h"

namespace kervan {

// ZeRO stage 1: AdamW whose moments are split across the data-parallel group.
//
// Rank r owns chunk r of the flat parameter buffer (chunk_of(N, dp, r)), which may cut through
// parameters. Per step:
//   reduce_gradients(): reduce-scatter the flat gradients (average), so each rank holds the
//                       averaged gradient of its chunk; returns the global gradient norm;
//   step():             AdamW on the chunk (each parameter's piece with that parameter's
//                       weight decay), then all-gather the parameters so every rank has all.
// m and v hold N / dp elements per rank instead of N. Gradients are reduced after backward, not
// overlapped with it (the overlapped bucketed path is GradientAllReducer, zero = 0).
//
// Under tensor parallelism (`tp`, the rank's TP group) the parameters are this rank's shards; the
// flat layout is the same on every TP rank, so the chunks line up, and the norm counts every
// global element once (parallel/grad_norm.h).
class ShardedAdamW final : public Stateful {
 public:
  ShardedAdamW(ParameterSet& params, Communicator& group, Backend& backend, AdamWConfig config,
               Communicator* tp = nullptr);
  float reduce_gradients();
  void step(float lr, float grad_scale);
  // Elements of optimizer state this rank holds (m and v together).
  int64_t state_numel() const { return 2 * shard_.count; }

  // optim/m/<param> and optim/v/<param> pieces of this rank's chunk (replica = its DP rank), and
  // optim/step.
  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;

 private:
  ParameterSet& params_;
  Communicator& group_;
  Communicator* tp_;
  Backend& be_;
  AdamWConfig cfg_;
  Chunk shard_;
  Tensor grad_shard_, m_, v_;
  int64_t t_ = 0;
};

}  // namespace kervan
