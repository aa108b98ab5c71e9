#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kervan {

enum class ReduceOp { Sum, Avg, Max };

// The part of n elements that rank i of `parts` owns in reduce_scatter / all_gather: contiguous,
// in rank order, sizes differing by at most one (the first n % parts ranks get one more).
struct Chunk {
  int64_t begin, count;
};
inline Chunk chunk_of(int64_t n, int parts, int i) {
  const int64_t base = n / parts, extra = n % parts;
  return {i * base + std::min<int64_t>(i, extra), base + (i < extra ? 1 : 0)};
}

// A collective in flight. wait() returns when it has completed on this rank; a collective that
// does not complete within the communicator's timeout ends the job with an error naming the
// operation, its size and the ranks that did not arrive (see MpiCommunicator).
class CommHandle {
 public:
  virtual ~CommHandle() = default;
  virtual void wait() = 0;
  // Seconds the collective ran once started (valid after wait(); 0 where not measured).
  virtual double seconds() const { return 0.0; }
};

// Collectives on one group of processes. Tensor- and data-parallel code sees only this interface:
// MPI implements it for CPU tensors, NCCL for GPU tensors. Every member of the group must issue
// the same collectives in the same order. Tensors are contiguous; `in` and `out` may not overlap
// unless stated.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // World ranks of this group's members, in group-rank order (for messages).
  virtual const std::vector<int>& world_ranks() const = 0;

  // t = op over all ranks of t (in place).
  virtual std::unique_ptr<CommHandle> all_reduce_async(Tensor& t, ReduceOp op) = 0;
  // out = this rank's chunk (chunk_of(in.numel(), size, rank)) of op over all ranks of in.
  virtual std::unique_ptr<CommHandle> reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) = 0;
  // out = every rank's in, concatenated in rank order; rank r's in holds chunk r of out
  // (chunk_of(out.numel(), size, r)). `in` may be that very chunk of `out` (in place).
  virtual std::unique_ptr<CommHandle> all_gather_async(Tensor& out, const Tensor& in) = 0;
  // t = root's t.
  virtual std::unique_ptr<CommHandle> broadcast_async(Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  void all_reduce(Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }
  void reduce_scatter(Tensor& out, const Tensor& in, ReduceOp op) { reduce_scatter_async(out, in, op)->wait(); }
  void all_gather(Tensor& out, const Tensor& in) { all_gather_async(out, in)->wait(); }
  void broadcast(Tensor& t, int root) { broadcast_async(t, root)->wait(); }
};

// The group of one process: every collective is the identity (Avg of one value is the value).
// Used when kervan runs without mpirun.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::vector<int>& world_ranks() const override { return ranks_; }
  std::unique_ptr<CommHandle> all_reduce_async(Tensor& t, ReduceOp op) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommHandle> broadcast_async(Tensor& t, int root) override;
  void barrier() override {}

 private:
  std::vector<int> ranks_{0};
};

}  // namespace kervan
