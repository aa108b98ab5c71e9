#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/state.h"
#include "launcher/run_config.h"

namespace kervan {

// The trainer's own part of a checkpoint: how far the run is. The learning-rate schedule's
// position is the step; the data position is consumed_samples, which refers to the sample order
// of (seed, sources, weights, seq_len), saved with it. Every random stream in kervan is a pure
// function of (seed, stream name, index) (core/rng.h), so the seed is all of the RNG state. The
// resolved config and the model shape are saved too, for `kervan ckpt inspect` and export.
class TrainProgress final : public Stateful {
 public:
  TrainProgress(const RunConfig& config, std::vector<std::string> sources, std::vector<double> weights);

  int64_t step = 0;              // optimizer steps done
  int64_t consumed_samples = 0;  // global samples consumed by those steps
  // Through a coordinator: the served corpus behind each source ("NAME FINGERPRINT"), saved with
  // the position so that a resume notices other data served under the same names.
  std::vector<std::string> served_corpora;

  void state(StateDict& out) override;
  void load_state(const StateDict& in) override;
  // How the data order a checkpoint's position refers to differs from this run's (seed, sources,
  // weights or seq_len), one line each; empty when it is the same order.
  std::vector<std::string> data_order_changes(const StateDict& saved) const;

 private:
  const RunConfig& config_;
  std::vector<std::string> sources_;
  std::vector<double> weights_;  // normalised
};

}  // namespace kervan
