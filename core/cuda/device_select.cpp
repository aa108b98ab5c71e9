#include "core/cuda/device_select.h"

#include "core/cuda/backend_impl.h"

namespace kervan {

using cuda::check;

CudaDeviceChoice cuda_select_device(int local_rank) {
  const CudaAvailability a = cuda_availability();
  if (!a.ok) throw UserError(a.reason);
  if (local_rank < 0) throw UserError("node-local rank " + std::to_string(local_rank) + " is negative");
  CudaDeviceChoice c;
  check(cudaGetDeviceCount(&c.count), "cudaGetDeviceCount");
  c.device = local_rank % c.count;
  check(cudaSetDevice(c.device), "cudaSetDevice", "device " + std::to_string(c.device));
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, c.device), "cudaGetDeviceProperties", "device " + std::to_string(c.device));
  c.name = prop.name;
  return c;
}

cudaStream_t cuda_compute_stream(Backend& be) {
  auto* cuda = dynamic_cast<CudaBackend*>(&be);
  if (!cuda) throw std::logic_error("an NCCL communicator needs the CUDA backend's stream, got a " +
                                    std::string(be.device() == Device::CPU ? "CPU" : "foreign") + " backend");
  return cuda->stream();
}

}  // namespace kervan
