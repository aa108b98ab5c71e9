#pragma once
#include <cstddef>
#include <memory>

#include "core/backend.h"
#include "core/cuda_module.h"

namespace kervan {

// Whether this build has the CUDA backend and the machine a device for it; when not, the reason
// ("this kervan was built without CUDA", "no CUDA device: ...").
struct CudaAvailability {
  bool ok = false;
  std::string reason;
};
CudaAvailability cuda_availability();

// The CUDA backend on the process's current device (fp32 storage; Backend::set_precision picks
// the matrix products' precision). Throws UserError "no CUDA device ..." where there is none. Every
// kernel is the twin of core/cpu's of the same name: the same math, stated in a comment at the top
// of its .cu file, and tests/gpu compares the two on random inputs.
std::unique_ptr<Backend> make_cuda_backend();

// Device memory of this process: the most ever in use at once, and what is in use now (bytes).
int64_t cuda_peak_bytes();
int64_t cuda_in_use_bytes();

// The current device's memory now, free and total; UserError "no CUDA device ..." without one.
DeviceMemory cuda_memory_info();

// dst <- src, `bytes` of device (or host) memory, once the device's queued work is done: a one-rank
// collective (parallel/solo_communicator.cpp).
void cuda_copy_bytes(void* dst, const void* src, size_t bytes);

}  // namespace kervan
