#pragma once
// The boundary between kervan and its CUDA backend. The backend, with cuBLAS and the CUDA runtime
// it links, is a shared library of its own, libkervan_cuda.so next to the kervan binary, that
// core/backends loads (dlopen) only when a run asks for train.device = "cuda": a CPU run never maps
// cuBLAS, whose relocations alone cost about 216 MB resident and 0.1 s of CPU time at start.
//
// The NCCL communicator (parallel/nccl_communicator.cpp) is built into the same library, so that
// NCCL too stays out of CPU runs; its factory joins this table when data parallelism uses it.
//
// The library exports one C symbol, kCudaModuleEntry, returning this table. Both sides are built
// from the same tree by the same compiler (the kervan target depends on the module), so the table
// passes C++ types; `abi` catches a module left over from a build with another interface.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/backend.h"

namespace kervan {

// Raise whenever CudaModule or the Backend interface changes.
inline constexpr int kCudaModuleAbi = 4;
inline constexpr const char* kCudaModuleFile = "libkervan_cuda.so";
inline constexpr const char* kCudaModuleEntry = "kervan_cuda_module";

struct CudaModule {
  int abi;  // first in every version of the table, so that any module's can be read
  // The backend on the process's current device; throws UserError "no CUDA device ..." without one.
  std::unique_ptr<Backend> (*make_backend)();
  // The most device memory the process has held at once (bytes).
  int64_t (*peak_bytes)();
  // dst <- src between device (or host) buffers, after the device's queued work.
  void (*copy_bytes)(void* dst, const void* src, size_t bytes);
  // Device memory free now (bytes); throws UserError "no CUDA device ..." without a device.
  int64_t (*free_memory_bytes)();
};

using CudaModuleEntryFn = const CudaModule* (*)();

}  // namespace kervan
