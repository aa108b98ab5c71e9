// libkervan_cuda.so's one exported symbol: the table core/backends loads (core/cuda_module.h).
#include "core/cuda/cuda_backend.h"
#include "core/cuda_module.h"

extern "C" __attribute__((visibility("default"))) const kervan::CudaModule* kervan_cuda_module() {
  static const kervan::CudaModule table{kervan::kCudaModuleAbi, &kervan::make_cuda_backend,
                                        &kervan::cuda_peak_bytes, &kervan::cuda_copy_bytes,
                                        &kervan::cuda_memory_info};
  return &table;
}
