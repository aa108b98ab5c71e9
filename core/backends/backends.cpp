#include "core/backends/backends.h"

#include "core/cpu/cpu_backend.h"
#include "core/error.h"
#ifdef KERVAN_HAVE_CUDA_BACKEND
#include "core/cuda/cuda_backend.h"
#endif

namespace kervan {

bool built_with_cuda() {
#ifdef KERVAN_HAVE_CUDA_BACKEND
  return true;
#else
  return false;
#endif
}

bool is_device_name(const std::string& device) {
  return device == "cpu" || device == "cuda";
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device != "cuda") throw UserError("unknown device '" + device + "' (cpu or cuda)");
#ifdef KERVAN_HAVE_CUDA_BACKEND
  return make_cuda_backend();
#else
  throw UserError(
      "no CUDA device: this kervan was built without CUDA (configure with nvcc on the PATH or "
      "-DKERVAN_CUDA=ON)");
#endif
}

int64_t device_peak_bytes(const Backend& be) {
#ifdef KERVAN_HAVE_CUDA_BACKEND
  if (be.device() == Device::CUDA) return cuda_peak_bytes();
#endif
  (void)be;
  return 0;
}

}  // namespace kervan
