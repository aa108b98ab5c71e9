#pragma once
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>
#include <utility>

#include "core/backend.h"
#include "parallel/communicator.h"

namespace kervan {

// A CUDA event that is destroyed with its owner, also while an error unwinds.
class CudaEvent {
 public:
  // cudaEventCreate; an EnvironmentError naming `what` when it fails.
  explicit CudaEvent(const std::string& what);
  CudaEvent(CudaEvent&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  ~CudaEvent();
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Communicator for CUDA tensors over NCCL, one per group (built into the CUDA module,
// core/cuda_module.h; kervan reaches it through the module's make_nccl_communicator).
//
// Bootstrap: the group is given as a host-memory Communicator of the same ranks (MPI's); rank 0
// of it creates the NCCL unique id and broadcasts it over that group in host memory. No MPI handle
// is needed here.
//
// Streams. Collectives run on the communicator's own non-blocking stream, while the backend
// computes on its own (CudaBackend::stream()). Both orders are explicit:
//  - compute -> collective: every collective first records an event on the compute stream and
//    makes its stream wait for it, so it reads its input only after every kernel the host has
//    queued so far, including those still running (a data-parallel bucket's all-reduce starts
//    from the grad-ready hook while backward's kernels for it are still queued);
//  - collective -> compute: an event recorded after the collective ends the handle; wait() polls
//    it from the host until it has completed, so everything the host launches after wait() runs
//    after the collective. Every caller reads a result only after wait() (the blocking forms,
//    GradientAllReducer::finish), so the compute stream needs no device-side wait.
// A handle keeps its tensors' storage alive until it is waited on or destroyed: the caching
// allocator reuses a freed block in compute-stream order, which knows nothing of this stream.
// A wait that does not complete within the timeout aborts the NCCL communicator and ends the job
// with an error naming the operation and size (instead of hanging in a CUDA wait).
// Uneven reduce_scatter / all_gather chunks (chunk_of) are grouped per-rank ncclReduce /
// ncclBroadcast calls; even ones use ncclReduceScatter / ncclAllGather directly.
class NcclCommunicator final : public Communicator {
 public:
  // Collective over the ranks of `bootstrap`; orders its collectives after `compute`'s work.
  NcclCommunicator(Communicator& bootstrap, std::string name, double timeout_s, cudaStream_t compute);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

  std::unique_ptr<CommHandle> all_reduce_async(Tensor& t, ReduceOp op) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommHandle> broadcast_async(Tensor& t, int root) override;
  void barrier() override;

  // Polls `event` until done or the timeout; on timeout aborts and ends the job.
  void wait_event(cudaEvent_t event, const std::string& what);

 private:
  // The stream waits for the compute work queued so far; returns the collective's start event.
  CudaEvent begin();
  std::unique_ptr<CommHandle> finish(CudaEvent start, const std::string& what, std::vector<Tensor> keep);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr, compute_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  std::string name_;
  double timeout_s_;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_ranks_;
  Tensor barrier_word_;
};

// The module's factory (core/cuda_module.h): `compute` must be this module's CUDA backend.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, const std::string& name,
                                                     double timeout_s, Backend& compute);

}  // namespace kervan
