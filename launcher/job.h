#pragma once
#include <memory>

#include "core/backend.h"
#include "launcher/run_config.h"
#include "launcher/stop_signals.h"
#include "parallel/communicator.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_grid.h"

namespace kervan {

// The processes of one job: MPI when started by mpirun/srun, otherwise this process alone, with
// its data- and tensor-parallel groups (parallel.tp).
//
// Where a collective's tensors live, the one rule every caller follows: a communicator takes
// tensors on its own device.
//  - dp and tp take the compute backend's tensors. Under train.device = "cuda" they are NCCL
//    communicators on this rank's GPU (use_compute_device), otherwise MPI on the host; so
//    gradients and their buckets, ZeRO-1 chunks, tensor-parallel activations and logits, and the
//    loss, token-count and norm words reduced over dp or tp (mean_over, sum_over,
//    global_grad_norm) are made by the backend the model computes on.
//  - world and node are always MPI on the host and take `host`'s tensors: the config hash, the
//    stop signal, checkpoint folder texts and barriers, coordinator words, the corpus verdict.
// Without mpirun every group is a SoloCommunicator, which takes either.
struct Job {
  std::unique_ptr<MpiRuntime> mpi;
  ProcessGrid grid;
  std::unique_ptr<Communicator> world, dp, tp;
  std::unique_ptr<Communicator> node;  // the ranks on this rank's machine
  std::unique_ptr<Backend> host;       // the CPU backend of world and node collectives
  bool leader() const { return grid.world_rank == 0; }
};

// With tp_over_world, every rank is in one tensor-parallel group whatever parallel.tp says
// (kervan sample).
Job start_job(const RunConfig& cfg, bool tp_over_world = false);

// The backend this rank computes on for `device`: null for "cpu" (job.host computes). For "cuda":
// picks this rank's GPU first (its rank among the node's ranks, modulo the node's GPUs; logged),
// makes the backend there and, under MPI, moves dp and tp to NCCL on it (collective over the job).
// UserError "no CUDA device ..." where there is none, on every rank alike.
// With `deterministic` (train.deterministic), NCCL's algorithm and protocol are pinned (Ring,
// Simple) unless NCCL_ALGO / NCCL_PROTO are set already.
std::unique_ptr<Backend> use_compute_device(const std::string& device, Job& job, double timeout_s,
                                            bool deterministic = false);

// Every rank must train the same thing: compares a hash of the resolved config across ranks
// (UserError naming the first rank that differs).
void check_same_config(const RunConfig& cfg, Job& job, Backend& be);

// The mean of `value` over the ranks of `group`.
float mean_over(Communicator& group, Backend& be, double value);
// The sum of `values` over the ranks of `group`, element by element, in double.
std::vector<double> sum_over(Communicator& group, Backend& be, const std::vector<double>& values);

// The stop signal any rank of `world` has received (0: none), the same on every rank: they all
// stop at the same step boundary.
int agreed_stop_signal(const StopSignals& signals, Communicator& world, Backend& be);

}  // namespace kervan
