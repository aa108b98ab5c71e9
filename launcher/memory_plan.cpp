#include "launcher/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/matmul_workspace.h"
#include "core/model/gpt.h"
#include "parallel/communicator.h"

namespace kervan {

namespace {

// Resident size of kervan besides its tensors: the binary and its libraries (OpenBLAS, Open MPI,
// libgomp, gRPC), thread stacks and allocator slack. Measured as the peak resident memory (VmHWM)
// of a run of a model of a few hundred parameters: 39-40 MB in one process with 1 or 2 threads, 48
// MB per rank under mpirun -np 2 (a CUDA build, Debian 12, 2 cores, 2026-12-02); a CPU run never
// maps cuBLAS (about 216 MB resident), which only train.device = "cuda" loads (core/cuda_module.h).
// tests/e2e/train_plan.sh holds the whole plan within 15% of the measured peak at three model sizes.
constexpr int64_t kRuntimeBytes = 44'000'000;

// A CUDA run's host memory also holds the CUDA libraries the module loads: cuBLAS, cuBLASLt and the
// runtime, 216 MB resident (measured as the difference they made to every kervan process when the
// binary linked them, 2026-12-02).
constexpr int64_t kCudaLibrariesBytes = 216'000'000;

// Device memory the CUDA context and the libraries' own buffers (cuBLAS's workspace, loaded
// kernels) take besides kervan's tensors. An estimate, not yet a reading: CUDA 12 and later load
// kernels lazily, and contexts of that kind are commonly reported at 300-600 MB; no GPU has run
// kervan yet. `kervan bench train --device cuda` measures it (context_mb: the device's total less
// its free memory once the backend exists), and scripts/gpu-check.sh prints it: replace this with
// the first reading.
constexpr int64_t kCudaContextBytes = 600'000'000;

// The caching device allocator (core/cuda/device_allocator.cpp) rounds a request of 1 MiB or more
// up to 2 MiB granules: this is the most that adds per buffer.
constexpr int64_t kDeviceGranuleBytes = 2 << 20;

double gb(int64_t bytes) {
  return static_cast<double>(bytes) / 1e9;
}

// One number from a "key value" text file such as /proc/meminfo or memory.stat; -1 when absent.
int64_t field_of(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string k;
    int64_t v = -1;
    if (words >> k >> v && (k == key || k == key + ":")) return v;
  }
  return -1;
}

int64_t number_in(const std::string& path) {
  std::ifstream in(path);
  int64_t v = -1;
  return in >> v ? v : -1;  // "max" (no limit) reads as no number
}

// The bf16 operand workspace holds the largest product's two operands (core/matmul_workspace.h):
// of a layer's, the MLP's weight gradient ([BT, 4C/tp] and [BT, C]) or input gradient (beside
// [4C/tp, C]), q|k|v's likewise; of the LM head's, the logits' gradient [BT, V/tp] beside the
// weight [V/tp, C] or the hidden states [BT, C] (the largest wherever V > 4C).
int64_t largest_bf16_operands(const GPTConfig& m, int tp, int64_t BT) {
  const int64_t C = m.d_model, H = 4 * C / tp, QKV = 3 * C / tp, V = m.padded_vocab() / tp;
  int64_t most = 0;
  for (const auto& [a, b] : {std::pair{BT * H, BT * C}, {BT * H, H * C}, {BT * QKV, BT * C}, {BT * QKV, QKV * C},
                             {BT * V, V * C}, {BT * V, BT * C}})
    most = std::max(most, bf16_operand_layout(a, b).bytes);
  return most;
}

}  // namespace

std::string MemoryPlan::describe() const {
  const std::string model =
      fmt::format("weights {:.2f} GB, gradients {:.2f} GB, optimizer {:.2f} GB, activations {:.2f} GB",
                  gb(weights), gb(gradients), gb(optimizer), gb(activations));
  const std::string copy = checkpoint ? fmt::format("checkpoint copy {:.2f} GB, ", gb(checkpoint)) : "";
  if (device == Device::CPU)
    return fmt::format("{}, {}runtime {:.2f} GB: {:.2f} GB in all", model, copy, gb(runtime),
                       gb(host_total()));
  const std::string bf16 =
      matmul_workspace ? fmt::format(", bf16 matmul workspace {:.2f} GB", gb(matmul_workspace)) : "";
  return fmt::format(
      "on the GPU {}{}, allocator rounding at most {:.2f} GB: {:.2f} GB in all, and the CUDA context about "
      "{:.2f} GB (an estimate); on the host {}runtime with CUDA's libraries {:.2f} GB: {:.2f} GB in all",
      model, bf16, gb(rounding), gb(device_total()), gb(context), copy, gb(runtime), gb(host_total()));
}

std::optional<MemoryPlan> plan_memory(const RunConfig& config, int tp, int dp) {
  if (config.arch != "gpt") return std::nullopt;
  const GPTConfig& m = config.model;
  const int64_t C = m.d_model, f = sizeof(float);
  // This rank's parameters: the split ones (embedding rows, q|k|v and MLP columns, projection
  // rows) divided by tp, the replicated ones (LayerNorms, wpe, projection biases) whole.
  const int64_t split = m.padded_vocab() * C + m.n_layer * (3 * C * C + 3 * C + C * C + 8 * C * C + 4 * C);
  const int64_t replicated = m.max_seq_len * C + m.n_layer * (4 * C + 2 * C) + 2 * C;
  const int64_t params = split / tp + replicated;
  MemoryPlan p;
  p.device = config.train.device == "cuda" ? Device::CUDA : Device::CPU;
  p.weights = params * f;
  const bool zero1 = config.parallel.zero == 1 && dp > 1;
  const int64_t chunk = chunk_of(params, dp, 0).count;
  p.gradients = (params + (zero1 ? chunk : 0)) * f;
  p.optimizer = 2 * (zero1 ? chunk : params) * f;
  const int64_t B = config.train.micro_batch, T = config.train.seq_len;
  p.activations = GPT::activation_bytes(m, tp, B, T, p.device);
  // Data parallelism gathers every replica's token-embedding rows (GradientAllReducer).
  if (dp > 1 && !zero1 && tp == 1) p.activations += static_cast<int64_t>(dp) * B * T * (C * f + 4);
  // An asynchronous save copies this rank's state to host memory first, so that training can go on
  // (checkpoint/snapshot.h); an upper bound: its weights and optimizer moments.
  if (!config.checkpoint.dir.empty() && config.checkpoint.async) p.checkpoint = p.weights + p.optimizer;
  p.runtime = kRuntimeBytes + 2 * B * T * 4;  // and the batch's host tokens
  if (p.device == Device::CUDA) {
    p.runtime += kCudaLibrariesBytes;
    p.context = kCudaContextBytes;
    // Buffers: values, gradients, m, v, and GPT::layout()'s activations (13 a layer, 19 besides).
    p.rounding = (4 + 13 * m.n_layer + 19) * kDeviceGranuleBytes;
    if (config.train.precision == "bf16") {
      p.matmul_workspace = largest_bf16_operands(m, tp, B * T) + kCublasLtWorkspaceBytes;
      p.rounding += 2 * kDeviceGranuleBytes;
    }
  }
  return p;
}

int64_t available_memory_bytes() {
  int64_t best = -1;
  const int64_t avail_kb = field_of("/proc/meminfo", "MemAvailable");
  if (avail_kb >= 0) best = avail_kb * 1024;
  // cgroup v2: the limit of this process's group, less what it already uses.
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    if (!line.starts_with("0::")) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const int64_t limit = number_in(dir + "/memory.max"), used = number_in(dir + "/memory.current");
    if (limit > 0 && used >= 0 && (best < 0 || limit - used < best))
      best = std::max<int64_t>(limit - used, 0);
  }
  return best;
}

void require_memory_fits(const MemoryPlan& plan, int ranks_on_node, int64_t available,
                         const std::string& file) {
  if (available < 0 || plan.host_total() * ranks_on_node <= available) return;
  throw UserError(fmt::format(
      "{}: this run needs {:.2f} GB per rank ({}) x {} ranks on this node, but {:.2f} GB is available; "
      "lower train.micro_batch or train.seq_len (activations grow with both), split the model with "
      "parallel.tp, shard the optimizer with parallel.zero = 1, or use a smaller model",
      file, gb(plan.host_total()), plan.describe(), ranks_on_node, gb(available)));
}

void require_device_memory_fits(const MemoryPlan& plan, int64_t available, const std::string& file) {
  if (plan.device_total() <= available) return;
  throw UserError(fmt::format(
      "{}: this run needs {:.2f} GB of GPU memory per rank ({}), but the GPU has {:.2f} GB free; lower "
      "train.micro_batch or train.seq_len (activations grow with both), or use a smaller model",
      file, gb(plan.device_total()), plan.describe(), gb(available)));
}

void require_gpu_fits(const MemoryPlan& plan, int64_t gpu_bytes, const std::string& file) {
  if (plan.device_total() + plan.context <= gpu_bytes) return;
  throw UserError(fmt::format(
      "{}: this run needs {:.2f} GB of GPU memory per rank with the CUDA context ({}), more than the "
      "{:.2f} GB of --gpu-memory; lower train.micro_batch or train.seq_len (activations grow with both), or "
      "use a smaller model",
      file, gb(plan.device_total() + plan.context), plan.describe(), gb(gpu_bytes)));
}

}  // namespace kervan
