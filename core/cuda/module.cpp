// libkervan_cuda.so's one exported symbol: the table core/backends loads (core/cuda_module.h).
// The module is the one place that holds both the backend and the NCCL communicator
// (parallel/nccl_communicator.cpp is built into it), so this table names both.
#include "core/cuda/cuda_backend.h"
#include "core/cuda/device_select.h"
#include "core/cuda_module.h"
#include "parallel/nccl_communicator.h"

extern "C" __attribute__((visibility("default"))) const kervan::CudaModule* kervan_cuda_module() {
  static const kervan::CudaModule table{kervan::kCudaModuleAbi,        &kervan::make_cuda_backend,
                                        &kervan::cuda_peak_bytes,      &kervan::cuda_copy_bytes,
                                        &kervan::cuda_memory_info,     &kervan::cuda_select_device,
                                        &kervan::make_nccl_communicator};
  return &table;
}
