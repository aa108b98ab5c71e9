#pragma once
// Status checks for every CUDA runtime and cuBLAS call, and for every kernel launch. A failure
// throws EnvironmentError naming the call (or the kernel) and the shapes it worked on, so the first
// run on a new machine says what broke rather than crashing later on a poisoned context.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace kervan::cuda {

[[noreturn]] void throw_cuda(cudaError_t err, const char* call, const std::string& what);
[[noreturn]] void throw_cublas(cublasStatus_t st, const char* call, const std::string& what);

inline void check(cudaError_t err, const char* call, const std::string& what = "") {
  if (err != cudaSuccess) throw_cuda(err, call, what);
}
inline void check(cublasStatus_t st, const char* call, const std::string& what = "") {
  if (st != CUBLAS_STATUS_SUCCESS) throw_cublas(st, call, what);
}

// After a launch: a bad configuration (too many threads, too much shared memory) shows up here.
// Faults inside the kernel surface at the next synchronising call, which is checked too; a debug
// build (or KERVAN_CUDA_SYNC=1) synchronises after every launch so that the fault names its kernel.
void check_launch(const char* kernel, const std::string& shape);

// Blocks of `threads` covering n items.
inline unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace kervan::cuda

// Inside kernels: a bounds check that a debug build enforces (device-side assert traps, and the next
// checked call reports it); a release build compiles it away.
#ifdef NDEBUG
#define KERVAN_DEVICE_ASSERT(cond) ((void)0)
#else
#include <cassert>
#define KERVAN_DEVICE_ASSERT(cond) assert(cond)
#endif
