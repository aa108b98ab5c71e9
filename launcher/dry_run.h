#pragma once
#include <string>

#include "launcher/run_config.h"

namespace kervan {

// Where a job will run, as far as a process can tell before it starts MPI: the world size and the
// ranks on this node, from --world / --ranks-per-node, else the launcher's environment (mpirun's
// OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_LOCAL_SIZE, srun's SLURM_NTASKS and
// SLURM_NTASKS_PER_NODE), else one process.
struct PlannedLayout {
  int world = 1;
  int ranks_per_node = 1;
  int rank = 0;  // only rank 0 prints
  double gpu_memory_gb = 0;  // --gpu-memory: plan for GPUs of this size (0: this machine's GPU)
};
PlannedLayout planned_layout(int world_flag, int ranks_per_node_flag);

// `kervan train --dry-run`: prints the resolved config (every key with where its value came from)
// and the plan (parameters, layout, tokens per step, steps per epoch of each source, memory per
// rank against the node's), without computing anything. A layout the config cannot use
// (parallel.tp does not divide the world) or a plan that cannot fit is a UserError, as at the start
// of a real run. Returns the exit code.
int run_dry_run(const RunConfig& cfg, const PlannedLayout& layout);

// Peak resident memory of this process so far (VmHWM), in bytes; -1 when unknown.
int64_t peak_resident_bytes();

}  // namespace kervan
