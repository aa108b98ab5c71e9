#pragma once
// The boundary between kervan and its CUDA backend. The backend, with cuBLAS, cuBLASLt and the
// CUDA runtime it links, is a shared library of its own, libkervan_cuda.so next to the kervan binary, that
// core/backends loads (dlopen) only when a run asks for train.device = "cuda": a CPU run never maps
// cuBLAS, whose relocations alone cost about 216 MB resident and 0.1 s of CPU time at start.
//
// The NCCL communicator (parallel/nccl_communicator.cpp) is built into the same library, so that
// NCCL too stays out of CPU runs. No MPI handle crosses this boundary: an NCCL group is made from
// the host-side Communicator of the same ranks (MPI's, made by MpiRuntime::group), over which
// rank 0's NCCL unique id is broadcast in host memory. The module so needs no MPI_Comm, and a test
// (or a later coordinator rendezvous) can bootstrap a group through any Communicator.
//
// The library exports one C symbol, kCudaModuleEntry, returning this table. Both sides are built
// from the same tree by the same compiler (the kervan target depends on the module), so the table
// passes C++ types; `abi` catches a module left over from a build with another interface.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/backend.h"

namespace kervan {

class Communicator;  // parallel/communicator.h: declared here only to name the factory's type

// Raise whenever CudaModule or the Backend interface changes.
inline constexpr int kCudaModuleAbi = 7;
inline constexpr const char* kCudaModuleFile = "libkervan_cuda.so";
inline constexpr const char* kCudaModuleEntry = "kervan_cuda_module";

struct DeviceMemory {
  int64_t free = 0, total = 0;  // bytes
};

// The device a rank computes on: its index among the devices this process sees
// (CUDA_VISIBLE_DEVICES applies), how many it sees, and the device's name.
struct CudaDeviceChoice {
  int device = 0, count = 0;
  std::string name;
};

struct CudaModule {
  int abi;  // first in every version of the table, so that any module's can be read
  // The backend on the process's current device; throws UserError "no CUDA device ..." without one.
  std::unique_ptr<Backend> (*make_backend)();
  // The most device memory the process has held at once (bytes).
  int64_t (*peak_bytes)();
  // dst <- src between device (or host) buffers, after the device's queued work.
  void (*copy_bytes)(void* dst, const void* src, size_t bytes);
  // The current device's memory now: free and total (bytes); throws UserError "no CUDA device ..."
  // without a device.
  DeviceMemory (*memory_info)();
  // Makes device (local_rank % device count) the process's current one, before the backend is made
  // (its stream, cuBLAS handle and memory belong to the current device); throws UserError
  // "no CUDA device ..." without one.
  CudaDeviceChoice (*select_device)(int local_rank);
  // An NCCL communicator over the ranks of `bootstrap` (a host-memory group of the same ranks, in
  // the same order), collective over them; it orders its collectives after the work `compute` (a
  // backend this module made) has queued, and takes that backend's device tensors.
  std::unique_ptr<Communicator> (*make_nccl_communicator)(Communicator& bootstrap, const std::string& name,
                                                          double timeout_s, Backend& compute);
};

using CudaModuleEntryFn = const CudaModule* (*)();

}  // namespace kervan
