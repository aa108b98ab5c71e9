#include "launcher/job.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "core/backends/backends.h"
#include "core/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/rng.h"
#include "parallel/nccl_group.h"

namespace kervan {

// The node group's only collectives wait for its first rank to verify the corpus, which for a
// large one takes far longer than a training collective may.
constexpr double kVerifyTimeoutS = 6 * 3600;

Job start_job(const RunConfig& cfg, bool tp_over_world) {
  Job job;
  if (launched_by_mpi()) job.mpi = std::make_unique<MpiRuntime>();
  const int rank = job.mpi ? job.mpi->world_rank() : 0, size = job.mpi ? job.mpi->world_size() : 1;
  try {
    job.grid = ProcessGrid::make(rank, size, tp_over_world ? size : static_cast<int>(cfg.parallel.tp));
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what());
  }
  const double timeout = cfg.parallel.collective_timeout_s;
  if (job.mpi) {
    job.world = job.mpi->group(0, "world", timeout);
    job.dp = job.mpi->group(job.grid.tp_rank, "data-parallel", timeout);
    job.tp = job.mpi->group(job.grid.dp_rank, "tensor-parallel", timeout);
    job.node = job.mpi->node_group(kVerifyTimeoutS);
  } else {
    job.world = std::make_unique<SoloCommunicator>();
    job.dp = std::make_unique<SoloCommunicator>();
    job.tp = std::make_unique<SoloCommunicator>();
    job.node = std::make_unique<SoloCommunicator>();
  }
  job.host = make_cpu_backend();
  return job;
}

std::unique_ptr<Backend> use_compute_device(const std::string& device, Job& job, double timeout_s,
                                            bool deterministic) {
  if (device == "cpu") return nullptr;
  std::unique_ptr<Backend> be;
  std::string failure;
  try {
    if (device == "cuda") {
      const CudaDeviceChoice c = select_cuda_device(job.node->rank());
      spdlog::info("rank {}: CUDA device {} of {} ({}), node-local rank {}", job.grid.world_rank, c.device, c.count,
                   c.name, job.node->rank());
    }
    be = make_backend(device);
  } catch (const UserError& e) {  // "no CUDA device ...", an unknown device
    failure = e.what();
  }
  // Every rank learns whether some rank has no device before any goes on into NCCL's set-up,
  // which would wait for that rank; then every rank stops with its sentence, at the same moment.
  if (job.world->size() > 1) {
    Tensor t = job.host->empty({1}, DType::F32);
    const float mine = failure.empty() ? 0.0f : 1.0f;
    job.host->copy_from_host(t, &mine);
    job.world->all_reduce(t, ReduceOp::Max);
    if (job.host->item<float>(t) > 0 && failure.empty())
      failure = "no CUDA device: another rank of this job has none (its own error says why)";
  }
  if (!failure.empty()) throw UserError(failure);
  // NCCL for the groups whose tensors are now on the device (the rule above); every rank makes dp
  // first, then tp, so the NCCL initialisations line up.
  if (job.mpi) {
    // NCCL picks its algorithm (ring, tree) and protocol per message size from the topology, each
    // summing in another order; deterministic runs pin both, read when a communicator is made (a
    // value the user set is kept).
    if (deterministic) {
      setenv("NCCL_ALGO", "Ring", 0);
      setenv("NCCL_PROTO", "Simple", 0);
    }
    move_group_to_device(job.dp, "data-parallel", timeout_s, *be);
    move_group_to_device(job.tp, "tensor-parallel", timeout_s, *be);
  }
  return be;
}

void check_same_config(const RunConfig& cfg, Job& job, Backend& be) {
  const uint64_t h = stream_key(0, cfg.canonical());
  Tensor mine = be.empty({2}, DType::I32), all = be.empty({2 * job.world->size()}, DType::I32);
  const int32_t parts[2] = {static_cast<int32_t>(h), static_cast<int32_t>(h >> 32)};
  be.copy_from_host(mine, parts);
  job.world->all_gather(all, mine);
  const std::vector<int32_t> p = be.to_host<int32_t>(all);
  for (int r = 1; r < job.world->size(); ++r)
    if (p[2 * r] != p[0] || p[2 * r + 1] != p[1])
      throw UserError(cfg.file + ": the resolved config of rank " + std::to_string(r) +
                      " differs from rank 0's (every rank must get the same file, --set flags and data)");
}

float mean_over(Communicator& group, Backend& be, double value) {
  Tensor t = be.empty({1}, DType::F32);
  const float v = static_cast<float>(value);
  be.copy_from_host(t, &v);
  group.all_reduce(t, ReduceOp::Avg);
  return be.item<float>(t);
}

std::vector<double> sum_over(Communicator& group, Backend& be, const std::vector<double>& values) {
  if (group.size() == 1 || values.empty()) return values;
  Tensor t = be.empty({static_cast<int64_t>(values.size())}, DType::F64);
  be.copy_from_host(t, values.data());
  group.all_reduce(t, ReduceOp::Sum);
  std::vector<double> out(values.size());
  be.copy_to_host(out.data(), t);
  return out;
}

int agreed_stop_signal(const StopSignals& signals, Communicator& world, Backend& be) {
  if (world.size() == 1) return signals.received();
  Tensor t = be.empty({1}, DType::F32);
  const float mine = static_cast<float>(signals.received());
  be.copy_from_host(t, &mine);
  world.all_reduce(t, ReduceOp::Max);
  return static_cast<int>(be.item<float>(t));
}

}  // namespace kervan
