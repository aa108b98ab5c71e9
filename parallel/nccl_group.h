#pragma once
#include <memory>
#include <string>

#include "core/backend.h"
#include "parallel/communicator.h"

namespace kervan {

// `group` (a host-memory group, MPI's) becomes the NCCL communicator of the same ranks, on the
// device of `compute` (the CUDA backend), bootstrapped over the old group, which is then freed.
// Collective over the group's ranks; the NCCL communicator lives in the CUDA module
// (core/cuda_module.h), which this loads.
void move_group_to_device(std::unique_ptr<Communicator>& group, const std::string& name, double timeout_s,
                          Backend& compute);

}  // namespace kervan
