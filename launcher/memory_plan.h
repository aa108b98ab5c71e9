#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "launcher/run_config.h"

namespace kervan {

// The memory one training rank needs, from the config alone, before anything is allocated: the
// same buffers the model, the training step and the loader's batch will allocate, in bytes.
struct MemoryPlan {
  int64_t weights = 0;      // this rank's parameter values (its tensor-parallel shard)
  int64_t gradients = 0;    // their gradients (and the ZeRO-1 reduce-scatter chunk)
  int64_t optimizer = 0;    // AdamW's m and v (1/dp of them under ZeRO-1)
  int64_t activations = 0;  // what forward keeps for backward, and backward's scratch
  int64_t runtime = 0;      // the process itself: code, libraries, thread stacks, the data index
  int64_t total() const { return weights + gradients + optimizer + activations + runtime; }
  std::string describe() const;  // "weights 0.50 GB, gradients ..., total 2.1 GB"
};

// GPT only for now (nullopt for BERT and T5, whose allocations fail later with the same message).
std::optional<MemoryPlan> plan_memory(const RunConfig& config, int tp, int dp);

// Memory this process may still use, in bytes: the smaller of the kernel's MemAvailable and what
// the cgroup (a Slurm job's allocation, a container) still allows; -1 when neither can be read.
int64_t available_memory_bytes();

// Throws UserError, with the plan and a hint, when `ranks_on_node` ranks of this plan do not fit
// in `available` bytes.
void require_memory_fits(const MemoryPlan& plan, int ranks_on_node, int64_t available,
                         const std::string& file);

}  // namespace kervan
