#pragma once
#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "parallel/communicator.h"

namespace kervan {

// Communicator over an MPI communicator, for CPU tensors.
//
// Collectives run, in issue order, on one worker thread per communicator, using MPI's blocking
// collectives (the same algorithms as a plain MPI_Allreduce). The caller gets a handle at once
// and can keep computing, which is how gradient all-reduces overlap the backward pass.
//
// Timeouts: wait() gives up after `timeout_s`. The ranks that timed out then hold a roll call on
// a separate communicator (each sends its collective number to the others and listens for a
// grace period), so the error names the ranks that never arrived, and the job is aborted.
class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed at destruction).
  MpiCommunicator(MPI_Comm comm, std::string name, double timeout_s);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

  std::unique_ptr<CommHandle> all_reduce_async(Tensor& t, ReduceOp op) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommHandle> broadcast_async(Tensor& t, int root) override;
  void barrier() override;

  // Called by a handle whose collective did not finish in time; never returns.
  [[noreturn]] void report_timeout(const std::string& what, int64_t seq);
  double timeout_s() const { return timeout_s_; }

 private:
  std::unique_ptr<CommHandle> submit(std::string what, std::function<void()> work);
  // Throws EnvironmentError naming the MPI call and this group when rc is not MPI_SUCCESS.
  void check_mpi(int rc, const char* call) const;
  void worker_loop();

  MPI_Comm comm_, roll_call_comm_;
  std::string name_;
  double timeout_s_;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_ranks_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  int64_t next_seq_ = 0;
  std::thread worker_;
};

}  // namespace kervan
