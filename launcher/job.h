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
struct Job {
  std::unique_ptr<MpiRuntime> mpi;
  ProcessGrid grid;
  std::unique_ptr<Communicator> world, dp, tp;
  std::unique_ptr<Communicator> node;  // the ranks on this rank's machine
  bool leader() const { return grid.world_rank == 0; }
};

// With tp_over_world, every rank is in one tensor-parallel group whatever parallel.tp says
// (kervan sample).
Job start_job(const RunConfig& cfg, bool tp_over_world = false);

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
