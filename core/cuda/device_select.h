#pragma once
// Which GPU a rank computes on, and the stream its backend computes on: what the NCCL
// communicator (parallel/nccl_communicator.cpp, in the same module) needs to order its collectives
// after the compute work. Module-internal: the rest of kervan reaches these through the table of
// core/cuda_module.h and never sees a CUDA type.
#include <cuda_runtime_api.h>

#include "core/backend.h"
#include "core/cuda_module.h"

namespace kervan {

// cudaSetDevice(local_rank % count): the ranks of one node spread over its devices in turn (one
// rank per device when ranks = devices). Throws UserError "no CUDA device ..." without one, and
// UserError for a negative local rank.
CudaDeviceChoice cuda_select_device(int local_rank);

// The stream every kernel of `be` runs on; `be` must be a backend this module made (logic_error
// otherwise).
cudaStream_t cuda_compute_stream(Backend& be);

}  // namespace kervan
