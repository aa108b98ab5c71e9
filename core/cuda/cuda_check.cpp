#include "core/cuda/cuda_check.h"

#include <cstdlib>
#include <cstring>

namespace kervan::cuda {

void throw_cuda(cudaError_t err, const char* call, const std::string& what) {
  throw EnvironmentError(call, what.empty() ? "the CUDA device" : what,
                         std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err));
}

void throw_cublas(cublasStatus_t st, const char* call, const std::string& what) {
  throw EnvironmentError(call, what.empty() ? "the CUDA device" : what,
                         std::string(cublasGetStatusName(st)) + ": " + cublasGetStatusString(st));
}

namespace {
bool sync_after_launch() {
#ifndef NDEBUG
  return true;
#else
  static const bool on = [] {
    const char* v = std::getenv("KERVAN_CUDA_SYNC");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
#endif
}
}  // namespace

void check_launch(const char* kernel, const std::string& shape) {
  check(cudaGetLastError(), "kernel launch", std::string(kernel) + " " + shape);
  if (sync_after_launch()) check(cudaDeviceSynchronize(), "kernel", std::string(kernel) + " " + shape);
}

}  // namespace kervan::cuda
