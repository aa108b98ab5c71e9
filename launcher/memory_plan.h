#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "launcher/run_config.h"

namespace kervan {

// The memory one training rank needs, from the config alone, before anything is allocated: the
// same buffers the model, the training step and the loader's batch will allocate, in bytes. The
// model's tensors (weights to rounding) live on train.device: in host memory on the CPU, in the
// GPU's own memory with train.device = "cuda".
struct MemoryPlan {
  Device device = Device::CPU;
  int64_t weights = 0;      // this rank's parameter values (its tensor-parallel shard)
  int64_t gradients = 0;    // their gradients (and the ZeRO-1 reduce-scatter chunk)
  int64_t optimizer = 0;    // AdamW's m and v (1/dp of them under ZeRO-1)
  int64_t activations = 0;  // what forward keeps for backward, and backward's scratch, as the
                            // device's attention keeps it (Backend::attention_saved_shape)
  int64_t rounding = 0;     // CUDA: the caching allocator's rounding of each buffer, at most
  int64_t matmul_workspace = 0;  // CUDA bf16: the largest product's bf16 operands and cuBLASLt's
                                 // workspace (core/matmul_workspace.h)
  int64_t context = 0;      // CUDA: the context's and libraries' device memory (an estimate)
  int64_t checkpoint = 0;   // async checkpoints: the host copy of what this rank saves (weights, m, v)
  int64_t runtime = 0;      // the process itself: code, libraries (CUDA's on a GPU), thread stacks,
                            // the data index
  int64_t model_bytes() const {
    return weights + gradients + optimizer + activations + rounding + matmul_workspace;
  }
  // What the host and the GPU must hold for this rank.
  int64_t host_total() const { return (device == Device::CPU ? model_bytes() : 0) + checkpoint + runtime; }
  int64_t device_total() const { return device == Device::CPU ? 0 : model_bytes(); }
  std::string describe() const;  // "weights 0.50 GB, gradients ..., 2.1 GB in all"
};

// GPT only for now (nullopt for BERT and T5, whose allocations fail later with the same message).
std::optional<MemoryPlan> plan_memory(const RunConfig& config, int tp, int dp);

// Memory this process may still use, in bytes: the smaller of the kernel's MemAvailable and what
// the cgroup (a Slurm job's allocation, a container) still allows; -1 when neither can be read.
int64_t available_memory_bytes();

// Throws UserError, with the plan and a hint, when `ranks_on_node` ranks of this plan do not fit
// in `available` bytes of host memory.
void require_memory_fits(const MemoryPlan& plan, int ranks_on_node, int64_t available,
                         const std::string& file);

// Throws UserError, with the plan and a hint, when one rank's device memory does not fit in the
// `available` bytes its GPU has free (measured by a process whose CUDA context exists already, so
// the context is not counted again).
void require_device_memory_fits(const MemoryPlan& plan, int64_t available, const std::string& file);
// The same for a GPU of `gpu_bytes` in all (`--dry-run --gpu-memory`, planning for another
// machine's card): the context is counted.
void require_gpu_fits(const MemoryPlan& plan, int64_t gpu_bytes, const std::string& file);

}  // namespace kervan
