#pragma once
#include "core/tensor.h"

namespace kervan {

// The tensor-parallel peers of one rank, as the model sees them: the few collectives Megatron-style
// layers need. core/ does not know MPI or NCCL; parallel/tensor_parallel.h adapts a Communicator
// to this interface. Every rank of the group must make the same calls in the same order.
class TpGroup {
 public:
  virtual ~TpGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // t = sum over ranks of t (in place).
  virtual void all_reduce_sum(Tensor& t) = 0;
  // t = elementwise max over ranks of t (in place).
  virtual void all_reduce_max(Tensor& t) = 0;
  // t = mean over ranks of t (in place): keeps replicated gradients identical.
  virtual void all_reduce_avg(Tensor& t) = 0;
  // out = every rank's `in` concatenated in rank order (out has size() * in.numel() elements).
  virtual void all_gather(Tensor& out, const Tensor& in) = 0;
};

}  // namespace kervan
