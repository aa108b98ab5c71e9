#pragma once
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "parallel/communicator.h"

namespace kervan {

// Communicator for CUDA tensors over NCCL, one per group. The NCCL unique id travels over MPI
// (rank 0 of the group creates it, MPI_Bcast shares it), so the group is given as an MPI
// communicator. Collectives are enqueued on the communicator's own non-blocking CUDA stream and
// return at once; a handle waits on an event recorded after the collective, polling so that a
// collective that does not finish within the timeout aborts the NCCL communicator and ends the
// job with an error naming the operation and size (instead of hanging in a CUDA wait).
// Uneven reduce_scatter / all_gather chunks (chunk_of) are grouped per-rank ncclReduce /
// ncclBroadcast calls; even ones use ncclReduceScatter / ncclAllGather directly.
class NcclCommunicator final : public Communicator {
 public:
  // Collective over `group` (not taken over: the caller keeps and frees it).
  NcclCommunicator(MPI_Comm group, std::string name, double timeout_s);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

  std::unique_ptr<CommHandle> all_reduce_async(Tensor& t, ReduceOp op) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommHandle> broadcast_async(Tensor& t, int root) override;
  void barrier() override;

  cudaStream_t stream() const { return stream_; }
  // Polls `event` until done or the timeout; on timeout aborts and ends the job.
  void wait_event(cudaEvent_t event, const std::string& what);

 private:
  std::unique_ptr<CommHandle> finish(const std::string& what);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::string name_;
  double timeout_s_;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_ranks_;
  Tensor barrier_word_;
};

}  // namespace kervan
