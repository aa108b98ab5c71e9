#include "core/backends/backends.h"

#include "core/backends/cuda_module_loader.h"
#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

bool is_device_name(const std::string& device) {
  return device == "cpu" || device == "cuda";
}

Precision precision_named(const std::string& name) {
  if (name == "fp32") return Precision::F32;
  if (name == "bf16") return Precision::BF16;
  throw UserError("unknown precision '" + name + "' (fp32 or bf16)");
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device != "cuda") throw UserError("unknown device '" + device + "' (cpu or cuda)");
  return cuda_module().make_backend();
}

int64_t device_peak_bytes(const Backend& be) {
  return be.device() == Device::CUDA ? cuda_module().peak_bytes() : 0;
}

DeviceMemory gpu_memory() {
  return cuda_module().memory_info();
}

CudaDeviceChoice select_cuda_device(int local_rank) {
  return cuda_module().select_device(local_rank);
}

void copy_device_bytes(void* dst, const void* src, size_t bytes) {
  cuda_module().copy_bytes(dst, src, bytes);
}

}  // namespace kervan
